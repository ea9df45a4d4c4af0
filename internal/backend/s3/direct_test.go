package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// TestGetMatchesSDK: the direct GET path sends what the SDK's GetObject
// sends — host, path, the headers that matter, a valid signature over
// them — and reads answers the same, for every shape of URL: path style
// and virtual host, on a name and on an IP address, with a path in the
// base URL, keys that need escaping.
func TestGetMatchesSDK(t *testing.T) {
	answer := func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/missing"):
			s3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		case strings.HasSuffix(r.URL.Path, "/busy"):
			s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Reduce your request rate.")
		case strings.HasSuffix(r.URL.Path, "/denied"):
			s3Error(w, http.StatusForbidden, "SignatureDoesNotMatch", "no")
		case r.Header.Get("If-None-Match") == `"0123"`:
			w.WriteHeader(http.StatusNotModified)
		default:
			// Objects encrypted as their keys say: under SSE-KMS, DSSE-KMS
			// and SSE-C, S3's ETags are not MD5s; under SSE-S3 they are.
			switch path.Base(r.URL.Path) {
			case "kms":
				w.Header().Set("X-Amz-Server-Side-Encryption", "aws:kms")
			case "dsse":
				w.Header().Set("X-Amz-Server-Side-Encryption", "aws:kms:dsse")
			case "sse-c":
				w.Header().Set("X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256")
			case "sse-s3":
				w.Header().Set("X-Amz-Server-Side-Encryption", "AES256")
			}
			w.Header().Set("ETag", `"0123"`)
			w.Header().Set("Content-Type", "application/x-s3backer-block")
			w.Header().Set("X-Amz-Meta-S3backer-Blocksize", "4096")
			w.Write([]byte("data"))
		}
	}
	cases := []struct {
		name, base  string
		vhost, anon bool
	}{
		{"path style", "http://s3.example.test:9000/", false, false},
		{"vhost", "http://s3.example.test:9000/", true, false},
		{"vhost on an IP address", "http://127.0.0.1:9000/", true, false},
		{"base path", "http://s3.example.test:9000/gateway/", false, false},
		{"vhost base path", "http://s3.example.test:9000/gateway", true, false},
		{"anonymous", "http://s3.example.test:9000/", false, true},
	}
	keys := []string{"blocks/0000001f", "odd key+%/é", "missing", "busy", "denied", "kms", "dsse", "sse-c", "sse-s3"}
	opaque := map[string]bool{"kms": true, "dsse": true, "sse-c": true}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got [2][]recorded
			var results [2][]string
			for i, sdk := range []bool{true, false} {
				f := newFakeS3(t, answer)
				o := f.options()
				o.BaseURL, o.Vhost, o.SDKRequests, o.AcceptEncoding = tc.base, tc.vhost, sdk, "deflate"
				if tc.anon {
					o.Credentials = Credentials{Mode: CredentialsAnonymous}
				}
				f.routeAll(&o)
				b := mustNew(t, o)
				if !sdk && b.direct == nil {
					t.Fatal("no direct GET path")
				}
				for _, k := range keys {
					buf := make([]byte, 16)
					n, info, err := b.Get(context.Background(), k, buf, backend.GetOptions{})
					results[i] = append(results[i], describe(n, buf, info, err))
				}
				_, _, err := b.Get(context.Background(), "k", make([]byte, 16), backend.GetOptions{IfNoneMatch: "0123"})
				results[i] = append(results[i], describe(0, nil, backend.Info{}, err))
				got[i] = f.requests()
			}
			for j := range got[0] {
				sdk, direct := got[0][j], got[1][j]
				// The SDK adds ?x-id=GetObject, which S3 ignores (and the C
				// s3backer never sends).
				sdkURI, _, _ := strings.Cut(sdk.URI, "?x-id=GetObject")
				if sdk.Host != direct.Host || sdkURI != direct.URI {
					t.Errorf("request %d: SDK %s%s, direct %s%s", j, sdk.Host, sdk.URI, direct.Host, direct.URI)
				}
				for _, h := range []string{"Accept-Encoding", "If-None-Match", "X-Amz-Content-Sha256"} {
					if sdk.Header.Get(h) != direct.Header.Get(h) {
						t.Errorf("request %d: %s: SDK %q, direct %q", j, h, sdk.Header.Get(h), direct.Header.Get(h))
					}
				}
				sh, dh := signedHeaders(sdk.Header), signedHeaders(direct.Header)
				if signed := !tc.anon; strings.Contains(sh, "host") != signed || strings.Contains(dh, "host") != signed {
					t.Errorf("request %d: signed headers SDK %q, direct %q", j, sh, dh)
				}
			}
			for j := range results[0] {
				if results[0][j] != results[1][j] {
					t.Errorf("answer %d: SDK %s, direct %s", j, results[0][j], results[1][j])
				}
				// Every answer with a body: opaque just for the encrypted keys.
				if j < len(keys) && strings.HasPrefix(results[1][j], "data ") &&
					strings.HasSuffix(results[1][j], " opaque") != opaque[keys[j]] {
					t.Errorf("%s: %s, want the ETag opaque: %v", keys[j], results[1][j], opaque[keys[j]])
				}
			}
		})
	}
}

// describe puts what a Get returned in a comparable line.
func describe(n int, buf []byte, info backend.Info, err error) string {
	var p *backend.Permanent
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return "not found"
	case errors.Is(err, backend.ErrNotModified):
		return "not modified"
	case errors.As(err, &p):
		return "permanent: " + p.Err.Error()
	case err != nil:
		return "error: " + err.Error()
	}
	s := string(buf[:n]) + " " + info.ETag + " " + info.ContentType + " " + info.User["s3backer-blocksize"]
	if info.OpaqueETag {
		s += " opaque"
	}
	return s
}

// signedHeaders returns the SignedHeaders of a SigV4 Authorization.
func signedHeaders(h http.Header) string {
	a := h.Get("Authorization")
	if i := strings.Index(a, "SignedHeaders="); i >= 0 {
		return strings.SplitN(a[i+len("SignedHeaders="):], ",", 2)[0]
	}
	return ""
}

// TestPutMatchesSDK: the direct PUT sends the headers and body the SDK's
// PutObject sends, signs the same headers, and returns the same ETag.
func TestPutMatchesSDK(t *testing.T) {
	// Headers only one of the two sends, none of which S3 needs.
	volatile := map[string]bool{"Authorization": true, "X-Amz-Date": true, "Amz-Sdk-Invocation-Id": true,
		"Amz-Sdk-Request": true, "User-Agent": true, "Accept-Encoding": true}
	meta := backend.Meta{ContentType: "application/x-s3backer-block", ContentEncoding: "deflate",
		User: map[string]string{"S3backer-Blocksize": "4096", "s3backer-hmac": "abc"}}
	small, large := []byte("block body"), make([]byte, expectContinueBytes)
	for _, sign := range []bool{false, true} {
		for _, vhost := range []bool{false, true} {
			body := small
			if sign {
				body = large // the SDK asks for 100 Continue from 2 MiB
			}
			var got [2][]recorded
			var etags [2]string
			for i, sdk := range []bool{true, false} {
				f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
				})
				o := f.options()
				o.BaseURL, o.Vhost, o.SDKRequests, o.SignPayload = "http://s3.example.test:9000/", vhost, sdk, sign
				o.StorageClass, o.SSE, o.SSEKeyID, o.AccessType = "STANDARD_IA", "aws:kms", "key-1", "public-read"
				f.routeAll(&o)
				etag, err := mustNew(t, o).Put(context.Background(), "disk/odd key+%", body, meta)
				if err != nil {
					t.Fatal(err)
				}
				etags[i], got[i] = etag, f.requests()
			}
			sdk, dir := got[0][0], got[1][0]
			sdkURI, _, _ := strings.Cut(sdk.URI, "?x-id=PutObject")
			if sdk.Host+sdkURI != dir.Host+dir.URI || !bytes.Equal(sdk.Body, dir.Body) || len(dir.Body) != len(body) || etags[0] != etags[1] {
				t.Errorf("sign %v vhost %v: SDK %s%s %d bytes %s, direct %s%s %d bytes %s", sign, vhost,
					sdk.Host, sdk.URI, len(sdk.Body), etags[0], dir.Host, dir.URI, len(dir.Body), etags[1])
			}
			for _, h := range []http.Header{sdk.Header, dir.Header} {
				for k := range h {
					if !volatile[k] && sdk.Header.Get(k) != dir.Header.Get(k) {
						t.Errorf("sign %v vhost %v: %s: SDK %q, direct %q", sign, vhost, k, sdk.Header.Get(k), dir.Header.Get(k))
					}
				}
			}
			clean := func(s string) string {
				var keep []string
				for _, h := range strings.Split(s, ";") {
					if !strings.HasPrefix(h, "amz-sdk-") && h != "accept-encoding" {
						keep = append(keep, h)
					}
				}
				return strings.Join(keep, ";")
			}
			if s, d := clean(signedHeaders(sdk.Header)), clean(signedHeaders(dir.Header)); s != d {
				t.Errorf("sign %v vhost %v: signed headers: SDK %q, direct %q", sign, vhost, s, d)
			}
		}
	}
}

// BenchmarkRequests: CPU per block GET and PUT of 256 KiB on a loopback
// server, through the SDK and through the direct path (both ends in this
// process, so the server's share is in the numbers too; compare the two).
func BenchmarkRequests(b *testing.B) {
	const size = 256 << 10
	body := make([]byte, size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
			return
		}
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	for _, sdk := range []bool{true, false} {
		name := map[bool]string{true: "sdk", false: "direct"}[sdk]
		o := Options{Bucket: "bkt", BaseURL: srv.URL + "/", SDKRequests: sdk,
			Credentials: Credentials{Mode: CredentialsStatic, AccessID: "AKIDFAKE", AccessKey: "fake-secret-key"}}
		be, err := New(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, size)
		b.Run(name+"/get", func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := be.Get(context.Background(), "blocks/00000001", buf, backend.GetOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/put", func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := be.Put(context.Background(), "blocks/00000001", body, backend.Meta{ContentType: "application/x-s3backer-block"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
