// Package backendtest is the conformance suite of backend.Backend: every
// backend (mem, s3 against a real gateway, decorators) must pass Run.
package backendtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// manyKeys is more than two DeleteObjects batches and two list pages.
const manyKeys = 2500

// Run runs the suite; newBackend returns an empty backend (a fresh bucket)
// for each subtest.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, backend.Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"ContentEncodingRaw", testContentEncodingRaw},
		{"EmptyAndExactFit", testEmptyAndExactFit},
		{"Overwrite", testOverwrite},
		{"OddKeys", testOddKeys},
		{"NotFound", testNotFound},
		{"TooLarge", testTooLarge},
		{"Conditional", testConditional},
		{"Delete", testDelete},
		{"ManyKeys", testManyKeys},
		{"Concurrent", testConcurrent},
		{"Canceled", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBackend(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func put(t *testing.T, b backend.Backend, key string, body []byte, m backend.Meta) string {
	t.Helper()
	etag, err := b.Put(ctxFor(t), key, body, m)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return etag
}

// get reads key into a buffer of size bufSize and fails the test on error.
func get(t *testing.T, b backend.Backend, key string, bufSize int) ([]byte, backend.Info) {
	t.Helper()
	buf := make([]byte, bufSize)
	n, info, err := b.Get(ctxFor(t), key, buf, backend.GetOptions{})
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return buf[:n], info
}

func wantErr(t *testing.T, what string, err, want error, key string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
	if key != "" && !strings.Contains(err.Error(), key) {
		t.Errorf("%s: error %q does not name the key %q", what, err, key)
	}
}

func testRoundTrip(t *testing.T, b backend.Backend) {
	body := randBytes(4096)
	m := backend.Meta{
		ContentType:     "application/x-s3backer-block",
		ContentEncoding: "deflate, encrypt-AES-128-CBC",
		User: map[string]string{
			"s3backer-hmac":      `"efae8ca3ea56d7137e6e54036d882b14530ad3b1"`,
			"S3backer-Blocksize": "4096", // keys come back lower case
			"s3backer-filesize":  "1048576",
		},
	}
	key := "disk1/c448b72c-00000000"
	etag := put(t, b, key, body, m)
	if etag != md5hex(body) {
		t.Errorf("Put ETag = %q, want MD5 %q", etag, md5hex(body))
	}
	wantMeta := backend.Meta{ContentType: m.ContentType, ContentEncoding: m.ContentEncoding, User: map[string]string{
		"s3backer-hmac":      `"efae8ca3ea56d7137e6e54036d882b14530ad3b1"`,
		"s3backer-blocksize": "4096",
		"s3backer-filesize":  "1048576",
	}}

	got, info := get(t, b, key, 8192)
	if !bytes.Equal(got, body) {
		t.Fatalf("Get body differs (%d bytes, want %d)", len(got), len(body))
	}
	checkInfo(t, "Get", info, int64(len(body)), etag, wantMeta)

	hinfo, err := b.Head(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	checkInfo(t, "Head", hinfo, int64(len(body)), etag, wantMeta)

	// A bigger body, several TCP windows long.
	big := randBytes(1 << 20)
	bkey := "disk1/00000001"
	if etag := put(t, b, bkey, big, backend.Meta{ContentType: "text/plain"}); etag != md5hex(big) {
		t.Errorf("Put ETag = %q, want %q", etag, md5hex(big))
	}
	if got, _ := get(t, b, bkey, 1<<20); !bytes.Equal(got, big) {
		t.Fatal("1 MiB body differs")
	}
}

func checkInfo(t *testing.T, what string, info backend.Info, size int64, etag string, m backend.Meta) {
	t.Helper()
	if info.Size != size {
		t.Errorf("%s: Size = %d, want %d", what, info.Size, size)
	}
	if info.ETag != etag {
		t.Errorf("%s: ETag = %q, want %q", what, info.ETag, etag)
	}
	if info.ContentType != m.ContentType {
		t.Errorf("%s: ContentType = %q, want %q", what, info.ContentType, m.ContentType)
	}
	if info.ContentEncoding != m.ContentEncoding {
		t.Errorf("%s: ContentEncoding = %q, want %q", what, info.ContentEncoding, m.ContentEncoding)
	}
	for k, v := range m.User {
		if info.User[k] != v {
			t.Errorf("%s: User[%q] = %q, want %q (all: %q)", what, k, info.User[k], v, info.User)
		}
	}
}

// testContentEncodingRaw: bodies come back exactly as stored whatever
// Content-Encoding says; decoding is the codec's business, not the
// backend's (nor Go's HTTP client's).
func testContentEncodingRaw(t *testing.T, b backend.Backend) {
	// A valid zlib stream, a valid gzip stream, and bytes that are neither.
	zlib, _ := hex.DecodeString("789cedc1010d000000c2a06eef1fca1e0e28000000e0dd000f3c203d")
	gzip, _ := hex.DecodeString("1f8b08000000000000ff4a4c4a06040000ffff")
	cases := []struct {
		enc  string
		body []byte
	}{
		{"deflate", zlib},
		{"gzip", gzip},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x60, 0x00, 0x0f, 0x4d}},
		{"deflate, encrypt-AES-128-CBC", randBytes(32)},
		{"encrypt-AES-256-CBC", randBytes(48)},
		{"br", randBytes(10)},
	}
	for i, c := range cases {
		key := fmt.Sprintf("enc/%08x", i)
		put(t, b, key, c.body, backend.Meta{ContentType: "application/x-s3backer-block", ContentEncoding: c.enc})
		got, info := get(t, b, key, 4096)
		if !bytes.Equal(got, c.body) {
			t.Errorf("%s: body %x, want it raw: %x", c.enc, got, c.body)
		}
		if info.ContentEncoding != c.enc {
			t.Errorf("%s: Content-Encoding came back as %q", c.enc, info.ContentEncoding)
		}
	}
}

func testEmptyAndExactFit(t *testing.T, b backend.Backend) {
	etag := put(t, b, "empty", nil, backend.Meta{ContentType: "text/plain"})
	if etag != md5hex(nil) {
		t.Errorf("empty ETag = %q, want %q", etag, md5hex(nil))
	}
	if got, info := get(t, b, "empty", 16); len(got) != 0 || info.Size != 0 {
		t.Errorf("empty object: %d bytes, Size %d", len(got), info.Size)
	}
	body := randBytes(4096)
	put(t, b, "exact", body, backend.Meta{})
	if got, _ := get(t, b, "exact", len(body)); !bytes.Equal(got, body) {
		t.Error("object exactly the buffer's size differs")
	}
}

func testOverwrite(t *testing.T, b backend.Backend) {
	put(t, b, "k", []byte("first"), backend.Meta{ContentEncoding: "deflate", User: map[string]string{"a": "1"}})
	second := []byte("second, longer")
	etag := put(t, b, "k", second, backend.Meta{ContentType: "text/plain"})
	got, info := get(t, b, "k", 64)
	if !bytes.Equal(got, second) || info.ETag != etag {
		t.Fatalf("after overwrite: %q etag %q, want %q etag %q", got, info.ETag, second, etag)
	}
	if info.ContentEncoding != "" || info.User["a"] != "" {
		t.Errorf("old metadata survived an overwrite: %+v", info.Meta)
	}
}

func testOddKeys(t *testing.T, b backend.Backend) {
	keys := []string{"a b", "plus+sign", "pct%41", "q?x=1&y", "hash#frag", "semi;colon", "tilde~", "ünïcode"}
	for i, k := range keys {
		body := []byte(fmt.Sprintf("body %d", i))
		put(t, b, "odd/"+k, body, backend.Meta{})
		if got, _ := get(t, b, "odd/"+k, 64); !bytes.Equal(got, body) {
			t.Errorf("key %q: got %q", k, got)
		}
	}
	var listed []string
	if err := b.List(ctxFor(t), "odd/", "", func(k string) error { listed = append(listed, k); return nil }); err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(keys))
	for i, k := range keys {
		want[i] = "odd/" + k
	}
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("List = %q, want %q", listed, want)
	}
}

func testNotFound(t *testing.T, b backend.Backend) {
	ctx := ctxFor(t)
	_, _, err := b.Get(ctx, "missing/0000002a", make([]byte, 10), backend.GetOptions{})
	wantErr(t, "Get of a missing key", err, backend.ErrNotFound, "missing/0000002a")
	_, err = b.Head(ctx, "missing/0000002b")
	wantErr(t, "Head of a missing key", err, backend.ErrNotFound, "missing/0000002b")
	if !backend.IsPermanent(err) {
		t.Error("ErrNotFound is not permanent")
	}
}

func testTooLarge(t *testing.T, b backend.Backend) {
	body := randBytes(100)
	put(t, b, "big", body, backend.Meta{})
	_, _, err := b.Get(ctxFor(t), "big", make([]byte, 99), backend.GetOptions{})
	wantErr(t, "Get into a short buffer", err, backend.ErrTooLarge, "big")
	// The backend still works after abandoning a body.
	if got, _ := get(t, b, "big", 100); !bytes.Equal(got, body) {
		t.Error("Get after ErrTooLarge differs")
	}
}

func testConditional(t *testing.T, b backend.Backend) {
	ctx := ctxFor(t)
	body := []byte("conditional body")
	etag := put(t, b, "cond", body, backend.Meta{})
	other := md5hex([]byte("something else"))
	buf := make([]byte, 64)

	_, _, err := b.Get(ctx, "cond", buf, backend.GetOptions{IfNoneMatch: etag})
	wantErr(t, "If-None-Match with the current ETag", err, backend.ErrNotModified, "cond")

	n, info, err := b.Get(ctx, "cond", buf, backend.GetOptions{IfNoneMatch: other})
	if err != nil || !bytes.Equal(buf[:n], body) || info.ETag != etag {
		t.Errorf("If-None-Match with another ETag: %q %q %v", buf[:n], info.ETag, err)
	}

	n, _, err = b.Get(ctx, "cond", buf, backend.GetOptions{IfMatch: etag})
	if err != nil || !bytes.Equal(buf[:n], body) {
		t.Errorf("If-Match with the current ETag: %q %v", buf[:n], err)
	}

	_, _, err = b.Get(ctx, "cond", buf, backend.GetOptions{IfMatch: other})
	wantErr(t, "If-Match with another ETag", err, backend.ErrPrecondition, "cond")

	_, _, err = b.Get(ctx, "cond-missing", buf, backend.GetOptions{IfNoneMatch: etag})
	wantErr(t, "If-None-Match on a missing key", err, backend.ErrNotFound, "cond-missing")
}

func testDelete(t *testing.T, b backend.Backend) {
	ctx := ctxFor(t)
	if err := b.Delete(ctx, "del/never-existed"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	put(t, b, "del/x", []byte("x"), backend.Meta{})
	if err := b.Delete(ctx, "del/x"); err != nil {
		t.Fatal(err)
	}
	_, err := b.Head(ctx, "del/x")
	wantErr(t, "Head after Delete", err, backend.ErrNotFound, "del/x")
	if err := b.DeleteMany(ctx, nil); err != nil {
		t.Fatalf("DeleteMany of nothing: %v", err)
	}
}

// testManyKeys lists and deletes more keys than one S3 request handles.
func testManyKeys(t *testing.T, b backend.Backend) {
	ctx := ctxFor(t)
	keys := make([]string, manyKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("many/%08x", i)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i, k := range keys {
		g.Go(func() error {
			_, err := b.Put(gctx, k, []byte{byte(i), byte(i >> 8)}, backend.Meta{})
			return err
		})
	}
	// Neighbours the prefix must exclude.
	g.Go(func() error { _, err := b.Put(gctx, "man", []byte("x"), backend.Meta{}); return err })
	g.Go(func() error { _, err := b.Put(gctx, "manz", []byte("x"), backend.Meta{}); return err })
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	list := func(prefix, after string, stopAt int) []string {
		t.Helper()
		var got []string
		err := b.List(ctx, prefix, after, func(k string) error {
			got = append(got, k)
			if len(got) == stopAt {
				return backend.ErrStop
			}
			return nil
		})
		if err != nil {
			t.Fatalf("List(%q, %q): %v", prefix, after, err)
		}
		return got
	}
	if got := list("many/", "", -1); !slices.Equal(got, keys) {
		t.Fatalf("List: %d keys (first %q), want %d in order", len(got), head(got), len(keys))
	}
	if got := list("many/", keys[1199], -1); !slices.Equal(got, keys[1200:]) {
		t.Fatalf("List after %q: %d keys (first %q), want %d", keys[1199], len(got), head(got), len(keys)-1200)
	}
	if got := list("many/", "", 1500); !slices.Equal(got, keys[:1500]) {
		t.Fatalf("List stopped at 1500: %d keys", len(got))
	}
	if got := list("many/0000000", "", -1); !slices.Equal(got, keys[:16]) {
		t.Fatalf("List of a narrow prefix: %q", got)
	}
	if got := list("none/", "", -1); len(got) != 0 {
		t.Fatalf("List of an empty prefix: %q", got)
	}
	boom := errors.New("boom")
	if err := b.List(ctx, "many/", "", func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("List with a failing callback: %v, want boom", err)
	}

	// Delete all but the last 100, plus keys that do not exist.
	del := append(slices.Clone(keys[:manyKeys-100]), "many/nope-1", "many/nope-2")
	if err := b.DeleteMany(ctx, del); err != nil {
		t.Fatalf("DeleteMany: %v", err)
	}
	if got := list("many/", "", -1); !slices.Equal(got, keys[manyKeys-100:]) {
		t.Fatalf("after DeleteMany: %d keys left (first %q), want the last 100", len(got), head(got))
	}
	if got := list("man", "", -1); len(got) != 102 {
		t.Fatalf("neighbours: %d keys under \"man\", want 102", len(got))
	}
}

func head(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func testConcurrent(t *testing.T, b backend.Backend) {
	ctx := ctxFor(t)
	const workers, rounds = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, 2048)
			for r := range rounds {
				key := fmt.Sprintf("conc/%02d/%08x", w, r%4)
				body := randBytes(1024 + r)
				etag, err := b.Put(ctx, key, body, backend.Meta{User: map[string]string{"w": fmt.Sprint(w)}})
				if err != nil {
					errs <- err
					return
				}
				n, info, err := b.Get(ctx, key, buf, backend.GetOptions{})
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:n], body) || info.ETag != etag || info.User["w"] != fmt.Sprint(w) {
					errs <- fmt.Errorf("%s: read back something else", key)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCanceled(t *testing.T, b backend.Backend) {
	put(t, b, "c", []byte("x"), backend.Meta{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := b.Get(ctx, "c", make([]byte, 8), backend.GetOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: %v", err)
	}
	if _, err := b.Put(ctx, "c", []byte("y"), backend.Meta{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: %v", err)
	}
}
