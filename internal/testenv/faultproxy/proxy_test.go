package faultproxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// newClient never retries, decodes or pools behind the test's back:
// each request is one connection the proxy can reset.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: true}}
}

func do(t *testing.T, c *http.Client, method, url string, body []byte) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// mustDo expects a response with the given status.
func mustDo(t *testing.T, c *http.Client, method, url string, body []byte, status int) []byte {
	t.Helper()
	resp, b, err := do(t, c, method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, status, b)
	}
	return b
}

func setup(t *testing.T) (*upstream, *Proxy, *http.Client) {
	up := startUpstream(t)
	return up, Start(t, up.URL), newClient()
}

// What reaches upstream is what the client sent: request target, Host,
// every header (no additions), body; what comes back is what upstream
// answered, undecoded and untyped.
func TestForwardsExactly(t *testing.T) {
	up, p, _ := setup(t)
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}} // keep-alive on both legs
	const target = "/bucket/dir%2Fa%20b%21%27%28%29%2A~+c?x-id=1&y=%2F%3D&z"
	hdr := http.Header{
		"Authorization":        {"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=content-md5;host;x-amz-content-sha256;x-amz-date, Signature=abc"},
		"Content-Md5":          {"oXk3jGRWUGrISBJ4z7Fr3A=="},
		"Content-Type":         {"application/octet-stream"},
		"X-Amz-Date":           {"20260101T000000Z"},
		"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"},
		"X-Amz-Meta-S3backer":  {"a", "b"},
		"Expect":               {"100-continue"},
	}
	body := []byte("block data")
	for i := range 2 {
		req, err := http.NewRequest(http.MethodPut, p.URL+target, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = hdr.Clone()
		req.Header["User-Agent"] = []string{""} // send none
		req.Host = "bucket.s3.example:9000"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != etag(body) {
			t.Fatalf("put %d: %s %v", i, resp.Status, resp.Header)
		}
	}
	want := hdr.Clone()
	want.Set("Content-Length", "10")
	for i, s := range up.requests() {
		if s.RequestURI != target || s.Host != "bucket.s3.example:9000" || !bytes.Equal(s.Body, body) {
			t.Errorf("request %d: %s %s Host %s body %q", i, s.Method, s.RequestURI, s.Host, s.Body)
		}
		if !maps.EqualFunc(s.Header, want, slices.Equal) {
			t.Errorf("request %d: upstream got headers\n%v\nwant\n%v", i, s.Header, want)
		}
	}

	// The response: raw bytes under Content-Encoding: gzip, no Content-Type.
	gz := []byte("\x1f\x8b not really gzip")
	mustDo(t, c, http.MethodPut, p.URL+"/bucket/gz", gz, http.StatusOK)
	resp, err := c.Get(p.URL + "/bucket/gz")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, gz) {
		t.Fatalf("get: %q, %v", got, err)
	}
	if _, ok := resp.Header["Content-Type"]; ok || resp.Header.Get("Content-Encoding") != "gzip" ||
		resp.Header.Get("ETag") != etag(gz) || resp.ContentLength != int64(len(gz)) {
		t.Fatalf("get headers: %v", resp.Header)
	}
	c.CloseIdleConnections()
}

// Large bodies go through intact both ways.
func TestLargeBodies(t *testing.T) {
	up, p, c := setup(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	mustDo(t, c, http.MethodPut, p.URL+"/bucket/big", big, http.StatusOK)
	got := mustDo(t, c, http.MethodGet, p.URL+"/bucket/big", nil, http.StatusOK)
	stored, _ := up.object("/bucket/big")
	if md5.Sum(got) != md5.Sum(big) || md5.Sum(stored) != md5.Sum(big) {
		t.Fatal("big body changed on the way")
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		want           Kind
	}{
		{"GET", "/b/k", KindGetObject},
		{"GET", "/b/k?versionId=1", KindGetObject},
		{"GET", "/b?list-type=2&prefix=p", KindList},
		{"GET", "/b/?marker=x&max-keys=1000", KindList}, // s3backer's listing
		{"GET", "/?prefix=", KindList},
		{"HEAD", "/b/k", KindHead},
		{"PUT", "/b/k", KindPut},
		{"DELETE", "/b/k", KindDelete},
		{"POST", "/b?delete", KindDeleteMany},
		{"POST", "/b?delete=", KindDeleteMany},
		{"POST", "/b/k?uploads", KindOther},
		{"OPTIONS", "/b", KindOther},
	} {
		r, err := http.NewRequest(tc.method, "http://h"+tc.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := Classify(r); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.method, tc.target, got, tc.want)
		}
	}
}

// Without faults every kind is received and forwarded once; ResetCounts
// starts over.
func TestCounts(t *testing.T) {
	_, p, c := setup(t)
	mustDo(t, c, "PUT", p.URL+"/b/k1", []byte("1"), 200)
	mustDo(t, c, "PUT", p.URL+"/b/k2", []byte("2"), 200)
	mustDo(t, c, "GET", p.URL+"/b/k1", nil, 200)
	mustDo(t, c, "HEAD", p.URL+"/b/k1", nil, 200)
	mustDo(t, c, "GET", p.URL+"/b?list-type=2&prefix=", nil, 200)
	mustDo(t, c, "DELETE", p.URL+"/b/k1", nil, 204)
	mustDo(t, c, "POST", p.URL+"/b?delete", []byte("<Delete><Object><Key>k2</Key></Object></Delete>"), 200)
	mustDo(t, c, "OPTIONS", p.URL+"/b", nil, 501)

	want := Tally{
		Total:    8,
		ByMethod: map[string]int64{"PUT": 2, "GET": 2, "HEAD": 1, "DELETE": 1, "POST": 1, "OPTIONS": 1},
		ByKind:   map[Kind]int64{KindPut: 2, KindGetObject: 1, KindHead: 1, KindList: 1, KindDelete: 1, KindDeleteMany: 1, KindOther: 1},
	}
	got := p.Counts()
	checkTally(t, "received", got.Received, want)
	checkTally(t, "forwarded", got.Forwarded, want)
	if len(got.Injected) != 0 {
		t.Errorf("injected %v", got.Injected)
	}

	p.ResetCounts()
	got = p.Counts()
	checkTally(t, "received after reset", got.Received, Tally{})
	checkTally(t, "forwarded after reset", got.Forwarded, Tally{})
}

func checkTally(t *testing.T, what string, got, want Tally) {
	t.Helper()
	if got.Total != want.Total || !maps.Equal(got.ByMethod, want.ByMethod) && len(got.ByMethod)+len(want.ByMethod) > 0 ||
		!maps.Equal(got.ByKind, want.ByKind) && len(got.ByKind)+len(want.ByKind) > 0 {
		t.Errorf("%s: %+v\nwant %+v", what, got, want)
	}
}

// The error faults answer with S3's XML error and never reach upstream.
func TestErrorFaults(t *testing.T) {
	for _, tc := range []struct {
		faults Faults
		fault  Fault
		status int
		code   string
	}{
		{Faults{SlowDown: 1}, SlowDown, 503, "<Code>SlowDown</Code>"},
		{Faults{TooManyRequests: 1}, TooManyRequests, 429, "<Code>TooManyRequests</Code>"},
		{Faults{InternalError: 1}, InternalError, 500, "<Code>InternalError</Code>"},
		{Faults{NotImplemented: 1}, NotImplemented, 501, "<Code>NotImplemented</Code>"},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			up, p, c := setup(t)
			p.SetFaults(tc.faults)
			resp, body, err := do(t, c, "PUT", p.URL+"/b/k&<", []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/xml" ||
				!bytes.HasPrefix(body, []byte("<?xml")) || !bytes.Contains(body, []byte(tc.code)) ||
				!bytes.Contains(body, []byte("<Resource>/b/k&amp;&lt;</Resource>")) {
				t.Fatalf("%s %v\n%s", resp.Status, resp.Header, body)
			}
			resp, body, err = do(t, c, "HEAD", p.URL+"/b/k", nil)
			if err != nil || resp.StatusCode != tc.status || len(body) != 0 {
				t.Fatalf("head: %v %v %q", resp, err, body)
			}
			got := p.Counts()
			if got.Received.Total != 2 || got.Forwarded.Total != 0 || got.Injected[tc.fault] != 2 || len(up.requests()) != 0 {
				t.Fatalf("counts %+v, upstream saw %d", got, len(up.requests()))
			}
		})
	}
}

// A reset before forwarding: the client gets no answer and nothing happened.
func TestResetBefore(t *testing.T) {
	up, p, c := setup(t)
	p.SetFaults(Faults{ResetBefore: 1})
	for _, m := range []string{"PUT", "GET", "DELETE"} {
		if resp, _, err := do(t, c, m, p.URL+"/b/k", []byte("data")); err == nil {
			t.Fatalf("%s: got %s, want a connection error", m, resp.Status)
		}
	}
	got := p.Counts()
	if got.Received.Total != 3 || got.Forwarded.Total != 0 || got.Injected[ResetBefore] != 3 || len(up.requests()) != 0 {
		t.Fatalf("counts %+v, upstream saw %d", got, len(up.requests()))
	}
}

// A reset after forwarding: the request took effect, the client sees an
// error (a retry must be idempotent).
func TestResetAfter(t *testing.T) {
	up, p, c := setup(t)
	p.SetFaults(Faults{ResetAfter: 1})
	if resp, _, err := do(t, c, "PUT", p.URL+"/b/k", []byte("data")); err == nil {
		t.Fatalf("put: got %s, want a connection error", resp.Status)
	}
	if b, ok := up.object("/b/k"); !ok || string(b) != "data" {
		t.Fatalf("upstream holds %q, %v", b, ok)
	}
	if resp, _, err := do(t, c, "DELETE", p.URL+"/b/k", nil); err == nil {
		t.Fatalf("delete: got %s, want a connection error", resp.Status)
	}
	if _, ok := up.object("/b/k"); ok {
		t.Fatal("delete did not reach upstream")
	}
	got := p.Counts()
	if got.Forwarded.ByKind[KindPut] != 1 || got.Forwarded.ByKind[KindDelete] != 1 || got.Injected[ResetAfter] != 2 {
		t.Fatalf("counts %+v", got)
	}
}

// A stall without end lasts until the client gives up, and the request is
// then dropped, never forwarded.
func TestStallUntilClientGivesUp(t *testing.T) {
	up, p, _ := setup(t)
	ended := make(chan bool, 2)
	p.stallEnded = func(gaveUp bool) { ended <- gaveUp }
	p.SetFaults(Faults{Stall: 1})
	c := newClient()
	c.Timeout = 200 * time.Millisecond
	for _, m := range []string{"GET", "PUT"} {
		_, _, err := do(t, c, m, p.URL+"/b/k", []byte("data"))
		var to interface{ Timeout() bool }
		if !errors.As(err, &to) || !to.Timeout() {
			t.Fatalf("%s: got %v, want a client timeout", m, err)
		}
		if gaveUp := <-ended; !gaveUp {
			t.Fatalf("%s: stall ended without the client giving up", m)
		}
	}
	got := p.Counts()
	if got.Received.Total != 2 || got.Forwarded.Total != 0 || got.Injected[Stall] != 2 || len(up.requests()) != 0 {
		t.Fatalf("counts %+v, upstream saw %d", got, len(up.requests()))
	}
}

// A timed stall delays the request, then forwards it.
func TestStallFor(t *testing.T) {
	up, p, c := setup(t)
	ended := make(chan bool, 1)
	p.stallEnded = func(gaveUp bool) { ended <- gaveUp }
	const d = 100 * time.Millisecond
	p.SetFaults(Faults{Stall: 1, StallFor: d})
	start := time.Now()
	mustDo(t, c, "PUT", p.URL+"/b/k", []byte("late"), 200)
	if took := time.Since(start); took < d {
		t.Fatalf("answered after %v, stall was %v", took, d)
	}
	if gaveUp := <-ended; gaveUp {
		t.Fatal("stall reported the client giving up")
	}
	if b, _ := up.object("/b/k"); string(b) != "late" {
		t.Fatalf("upstream holds %q", b)
	}
	if got := p.Counts(); got.Forwarded.Total != 1 || got.Injected[Stall] != 1 {
		t.Fatalf("counts %+v", got)
	}
}

// A truncated body announces its full length and ends early: the client
// reads an unexpected EOF. Bodyless answers pass untouched.
func TestTruncate(t *testing.T) {
	_, p, c := setup(t)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	mustDo(t, c, "PUT", p.URL+"/b/k", data, 200)
	p.SetFaults(Faults{Truncate: 1})

	resp, body, err := do(t, c, "GET", p.URL+"/b/k", nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) || resp.ContentLength != int64(len(data)) || !bytes.Equal(body, data[:len(data)/2]) {
		t.Fatalf("got %d of %d bytes, %v", len(body), resp.ContentLength, err)
	}
	// Chunked upstream answer: the length is learnt, then cut.
	resp, body, err = do(t, c, "GET", p.URL+"/chunked", nil)
	const whole = "chunk 0;chunk 1;chunk 2;chunk 3;"
	if !errors.Is(err, io.ErrUnexpectedEOF) || resp.ContentLength != int64(len(whole)) || string(body) != whole[:len(whole)/2] {
		t.Fatalf("chunked: got %q of %d bytes, %v", body, resp.ContentLength, err)
	}
	mustDo(t, c, "HEAD", p.URL+"/b/k", nil, 200)
	mustDo(t, c, "DELETE", p.URL+"/b/k", nil, 204)
	if got := p.Counts(); got.Injected[Truncate] != 2 || got.Forwarded.Total != 5 {
		t.Fatalf("counts %+v", got)
	}
}

// Kinds limits the faults to some requests.
func TestKinds(t *testing.T) {
	_, p, c := setup(t)
	p.SetFaults(Faults{SlowDown: 1, Kinds: []Kind{KindPut}})
	mustDo(t, c, "PUT", p.URL+"/b/k", []byte("x"), 503)
	mustDo(t, c, "GET", p.URL+"/b/k", nil, 404)
	p.SetFaults(Faults{})
	mustDo(t, c, "PUT", p.URL+"/b/k", []byte("x"), 200)
}

// The same seed gives the same faults in the same order.
func TestSeed(t *testing.T) {
	_, p, c := setup(t)
	statuses := func(seed uint64) string {
		p.SetFaults(Faults{SlowDown: 0.3, InternalError: 0.2, Seed: seed})
		var b strings.Builder
		for range 60 {
			resp, _, err := do(t, c, "GET", p.URL+"/b/none", nil)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(resp.Status[:1])
		}
		return b.String()
	}
	a, b, other := statuses(42), statuses(42), statuses(43)
	if a != b {
		t.Fatalf("seed 42 gave\n%s\n%s", a, b)
	}
	if a == other {
		t.Fatalf("seeds 42 and 43 gave the same %s", a)
	}
	if n := strings.Count(a, "4"); n < 15 || n > 45 {
		t.Fatalf("%d of 60 passed with 50%% faults: %s", n, a)
	}
}

// Faults change while requests run (for -race).
func TestSetFaultsConcurrently(t *testing.T) {
	_, p, _ := setup(t)
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if resp, _, err := do(t, c, "GET", p.URL+"/b/k", nil); err == nil && resp.StatusCode != 404 && resp.StatusCode != 503 {
					t.Errorf("status %s", resp.Status)
				}
			}
		})
	}
	for i := 0; p.Counts().Received.Total < 300; i++ {
		p.SetFaults(Faults{SlowDown: float64(i%2) / 2, Seed: uint64(i)})
	}
	cancel()
	wg.Wait()
}

func TestBadFaults(t *testing.T) {
	_, p, _ := setup(t)
	for _, f := range []Faults{{SlowDown: 0.6, ResetAfter: 0.6}, {Truncate: -0.1}, {Stall: 2}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v accepted", f)
				}
			}()
			p.SetFaults(f)
		}()
	}
}

// SetResponseHeaders changes upstream's answer headers on the way back,
// told each request's kind, until it is set to nil.
func TestSetResponseHeaders(t *testing.T) {
	_, p, c := setup(t)
	mustDo(t, c, "PUT", p.URL+"/b/k", []byte("body"), http.StatusOK)
	var kinds []Kind
	p.SetResponseHeaders(func(k Kind, h http.Header) {
		kinds = append(kinds, k)
		h.Set("ETag", `"changed"`)
		h.Set("X-Amz-Server-Side-Encryption", "aws:kms")
	})
	resp, body, err := do(t, c, "GET", p.URL+"/b/k", nil)
	if err != nil || string(body) != "body" || resp.Header.Get("ETag") != `"changed"` ||
		resp.Header.Get("X-Amz-Server-Side-Encryption") != "aws:kms" || !slices.Equal(kinds, []Kind{KindGetObject}) {
		t.Fatalf("GET through the hook: %v, body %q, headers %v, kinds %v", err, body, resp.Header, kinds)
	}
	p.SetResponseHeaders(nil)
	resp, _, err = do(t, c, "GET", p.URL+"/b/k", nil)
	if err != nil || resp.Header.Get("ETag") != etag([]byte("body")) || resp.Header.Get("X-Amz-Server-Side-Encryption") != "" {
		t.Fatalf("GET after the hook was removed: %v, headers %v", err, resp.Header)
	}
}
