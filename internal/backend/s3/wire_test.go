package s3

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// TestPutHeaders: a PUT carries what s3backer's does (§2.1) and no SDK
// checksum headers that S3-compatible servers reject.
func TestPutHeaders(t *testing.T) {
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	})
	o := f.options()
	o.StorageClass = "STANDARD_IA"
	o.SSE = "aws:kms"
	o.SSEKeyID = "my-kms-key"
	b := mustNew(t, o)
	body := []byte("block body")
	etag, err := b.Put(context.Background(), "disk/00000000", body, backend.Meta{
		ContentType:     "application/x-s3backer-block",
		ContentEncoding: "deflate, encrypt-AES-128-CBC",
		User:            map[string]string{"S3backer-Blocksize": "4096", "s3backer-hmac": `"abc"`},
	})
	if err != nil {
		t.Fatal(err)
	}
	if etag != "0123456789abcdef0123456789abcdef" {
		t.Errorf("ETag = %q, want it unquoted", etag)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	sum := md5.Sum(body)
	want := map[string]string{
		"Content-Md5":                  base64.StdEncoding.EncodeToString(sum[:]),
		"Content-Type":                 "application/x-s3backer-block",
		"Content-Encoding":             "deflate, encrypt-AES-128-CBC",
		"X-Amz-Acl":                    "private",
		"X-Amz-Storage-Class":          "STANDARD_IA",
		"X-Amz-Server-Side-Encryption": "aws:kms",
		"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "my-kms-key",
		"X-Amz-Meta-S3backer-Blocksize":               "4096",
		"X-Amz-Meta-S3backer-Hmac":                    `"abc"`,
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if r.Method != http.MethodPut || r.Path != "/bkt/disk/00000000" {
		t.Errorf("%s %s, want PUT /bkt/disk/00000000 (path style)", r.Method, r.Path)
	}
	if !bytes.Equal(r.Body, body) {
		t.Errorf("body %q", r.Body)
	}
	if a := r.Header.Get("Authorization"); !strings.Contains(a, "AWS4-HMAC-SHA256 Credential=AKIDFAKE/") ||
		!strings.Contains(a, "/us-east-1/s3/aws4_request") {
		t.Errorf("Authorization %q", a)
	}
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum") || strings.EqualFold(k, "x-amz-sdk-checksum-algorithm") {
			t.Errorf("unexpected checksum header %s", k)
		}
	}
}

// TestPutPayloadSigning: by default a PUT body is not hashed into the
// signature (UNSIGNED-PAYLOAD) but bound to it by its Content-MD5, a signed
// header; SignPayload signs its SHA-256 as s3backer does.
func TestPutPayloadSigning(t *testing.T) {
	body := []byte("block body")
	sha := sha256.Sum256(body)
	for _, tc := range []struct {
		sign bool
		want string
	}{
		{false, "UNSIGNED-PAYLOAD"},
		{true, hex.EncodeToString(sha[:])},
	} {
		f := newFakeS3(t, func(http.ResponseWriter, *http.Request) {})
		o := f.options()
		o.SignPayload = tc.sign
		if _, err := mustNew(t, o).Put(context.Background(), "k", body, backend.Meta{}); err != nil {
			t.Fatal(err)
		}
		r := f.requests()[0]
		if got := r.Header.Get("X-Amz-Content-Sha256"); got != tc.want {
			t.Errorf("SignPayload %v: x-amz-content-sha256 %q, want %q", tc.sign, got, tc.want)
		}
		a := r.Header.Get("Authorization")
		_, signed, _ := strings.Cut(a, "SignedHeaders=")
		signed, _, _ = strings.Cut(signed, ",")
		for _, h := range []string{"content-md5", "x-amz-content-sha256", "content-length"} {
			if !slices.Contains(strings.Split(signed, ";"), h) {
				t.Errorf("SignPayload %v: %s not signed: %q", tc.sign, h, a)
			}
		}
		if sum := md5.Sum(body); r.Header.Get("Content-Md5") != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Errorf("SignPayload %v: Content-MD5 %q", tc.sign, r.Header.Get("Content-Md5"))
		}
	}
}

// TestAccessTypeSent: --accessType goes out as x-amz-acl.
func TestAccessTypeSent(t *testing.T) {
	f := newFakeS3(t, func(http.ResponseWriter, *http.Request) {})
	o := f.options()
	o.AccessType = "public-read"
	if _, err := mustNew(t, o).Put(context.Background(), "k", []byte("x"), backend.Meta{}); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[0].Header.Get("X-Amz-Acl"); got != "public-read" {
		t.Errorf("x-amz-acl %q", got)
	}
}

// TestGetRaw: a gzip body with Content-Encoding: gzip comes back as the
// compressed bytes, and the GET says which encodings it accepts.
func TestGetRaw(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("s3backer "), 100))
	zw.Close()
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("ETag", `"feedfacefeedfacefeedfacefeedface"`)
		w.Header().Set("X-Amz-Meta-S3backer-Hmac", `"hmac"`)
		w.Write(gz.Bytes())
	})
	o := f.options()
	o.AcceptEncoding = acceptEncoding("AES-128-CBC")
	b := mustNew(t, o)
	buf := make([]byte, 4096)
	n, info, err := b.Get(context.Background(), "k", buf, backend.GetOptions{IfNoneMatch: "00112233445566778899aabbccddeeff"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], gz.Bytes()) {
		t.Errorf("body was decoded: got %d bytes, want the %d raw ones", n, gz.Len())
	}
	if info.ContentEncoding != "gzip" || info.ETag != "feedfacefeedfacefeedfacefeedface" || info.User["s3backer-hmac"] != `"hmac"` {
		t.Errorf("info %+v", info)
	}
	r := f.requests()[0]
	if got := r.Header.Get("Accept-Encoding"); got != "deflate, zstd, encrypt-AES-128-CBC" {
		t.Errorf("Accept-Encoding %q", got)
	}
	if !strings.Contains(r.Header.Get("Authorization"), "accept-encoding") {
		t.Errorf("Accept-Encoding not signed: %q", r.Header.Get("Authorization"))
	}
	if got := r.Header.Get("If-None-Match"); got != `"00112233445566778899aabbccddeeff"` {
		t.Errorf("If-None-Match %q, want the ETag quoted", got)
	}
}

// TestDeleteManyBatches: 2500 keys go in three quiet DeleteObjects with
// Content-MD5, and a per-key error fails the call.
func TestDeleteManyBatches(t *testing.T) {
	var failKey atomic.Value
	failKey.Store("")
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><DeleteResult>`)
		if k := failKey.Load().(string); k != "" {
			fmt.Fprintf(w, `<Error><Key>%s</Key><Code>InternalError</Code><Message>try again</Message></Error>`, k)
		}
		io.WriteString(w, `</DeleteResult>`)
	})
	b := mustNew(t, f.options())
	keys := make([]string, 2500)
	for i := range keys {
		keys[i] = fmt.Sprintf("p/%08x", i)
	}
	if err := b.DeleteMany(context.Background(), keys); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	var all []string
	for i, r := range reqs {
		if r.Method != http.MethodPost || r.Path != "/bkt/" && r.Path != "/bkt" || !strings.Contains(r.RawQuery, "delete") {
			t.Errorf("request %d: %s %s?%s", i, r.Method, r.Path, r.RawQuery)
		}
		sum := md5.Sum(r.Body)
		if got := r.Header.Get("Content-Md5"); got != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Errorf("request %d: Content-MD5 %q does not match the body", i, got)
		}
		var d struct {
			Quiet   bool
			Objects []struct{ Key string } `xml:"Object"`
		}
		if err := xml.Unmarshal(r.Body, &d); err != nil {
			t.Fatal(err)
		}
		if !d.Quiet {
			t.Errorf("request %d not quiet", i)
		}
		for _, o := range d.Objects {
			all = append(all, o.Key)
		}
	}
	if len(all) != 2500 || all[0] != keys[0] || all[2499] != keys[2499] {
		t.Errorf("deleted %d keys", len(all))
	}

	failKey.Store("p/00000007")
	err := b.DeleteMany(context.Background(), keys[:10])
	if err == nil || !strings.Contains(err.Error(), "p/00000007") || !strings.Contains(err.Error(), "InternalError") {
		t.Errorf("per-key failure: %v", err)
	}
	if backend.IsPermanent(err) {
		t.Errorf("InternalError classified permanent: %v", err)
	}
}

// TestVhost: with Vhost the bucket is in the host name.
func TestVhost(t *testing.T) {
	f := newFakeS3(t, func(http.ResponseWriter, *http.Request) {})
	o := f.options()
	o.BaseURL = "http://s3.example.test:9000/"
	o.Vhost = true
	f.routeAll(&o)
	if _, err := mustNew(t, o).Put(context.Background(), "dir/k", []byte("x"), backend.Meta{}); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	if r.Host != "bkt.s3.example.test:9000" || r.Path != "/dir/k" {
		t.Errorf("vhost request to %s%s, want bkt.s3.example.test:9000/dir/k", r.Host, r.Path)
	}
}

// TestAnonymous: --accessId="" sends no signature.
func TestAnonymous(t *testing.T) {
	f := newFakeS3(t, func(http.ResponseWriter, *http.Request) {})
	o := f.options()
	o.Credentials = Credentials{Mode: CredentialsAnonymous}
	if _, err := mustNew(t, o).Head(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if a := f.requests()[0].Header.Get("Authorization"); a != "" {
		t.Errorf("anonymous request signed: %q", a)
	}
}

func TestDelete404IsSuccess(t *testing.T) {
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) { s3Error(w, 404, "NoSuchKey", "gone") })
	if err := mustNew(t, f.options()).Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
}
