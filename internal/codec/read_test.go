package codec

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// tamper is a backend whose reads return altered bodies or ETags, as a
// damaged transfer or a lying store would.
type tamper struct {
	*mem.Backend
	flip   bool   // flip a bit of every body read
	etag   string // if set, the ETag every read reports
	opaque bool   // reads say their ETag is not an MD5 (SSE-KMS)
}

func (b *tamper) Get(ctx context.Context, key string, buf []byte, opt backend.GetOptions) (int, backend.Info, error) {
	n, info, err := b.Backend.Get(ctx, key, buf, opt)
	if err == nil && b.flip && n > 0 {
		buf[0] ^= 1
	}
	if err == nil && b.etag != "" {
		info.ETag = b.etag
	}
	info.OpaqueETag = b.opaque
	return n, info, err
}

func readErr(t *testing.T, s *Store, n uint64) error {
	t.Helper()
	buf := fill(s.BlockSize(), 0xee)
	err := s.ReadBlock(context.Background(), n, buf)
	// A disk of plain blocks reads into the caller's buffer (readOpt):
	// then a failed read may have left the object's bytes there. An
	// encoded disk never lets undecoded (or unauthenticated) bytes in.
	if err != nil && !s.direct && !bytes.Equal(buf, fill(s.BlockSize(), 0xee)) {
		t.Errorf("failed read of block %d changed the caller's buffer", n)
	}
	return err
}

func wantEIO(t *testing.T, err error, words ...string) {
	t.Helper()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("error %v, want EIO", err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func TestMissingObjectReadsZero(t *testing.T) {
	s, b := memStore(t, nil)
	buf := fill(4096, 0xee)
	if err := s.ReadBlock(context.Background(), 9, buf); err != nil {
		t.Fatal(err)
	}
	if !blockstore.IsZero(buf) {
		t.Fatal("missing block is not zero")
	}
	if c := b.Counts(); c.Gets != 1 || c.Heads != 0 {
		t.Fatalf("read of a missing block: %+v, want one GET", c)
	}
}

func TestWrongSizedObjectsAreCorrupt(t *testing.T) {
	s, b := memStore(t, nil)
	put(t, b, "disk1/00000001", fill(4095, 1), backend.Meta{})
	put(t, b, "disk1/00000002", fill(4097, 1), backend.Meta{})
	put(t, b, "disk1/00000003", fill(maxObjectSize(4096)+1, 1), backend.Meta{}) // larger than any encoding
	put(t, b, "disk1/00000004", nil, backend.Meta{})

	err := readErr(t, s, 1)
	wantEIO(t, err, "block 1", "disk1/00000001", "4095", "4096")
	if !errors.Is(err, blockstore.ErrCorrupt) {
		t.Errorf("short object: %v, want ErrCorrupt", err)
	}
	wantEIO(t, readErr(t, s, 2), "block 2", "4097")
	err = readErr(t, s, 3)
	wantEIO(t, err, "block 3", "larger than")
	if !errors.Is(err, blockstore.ErrCorrupt) {
		t.Errorf("oversized object: %v, want ErrCorrupt", err)
	}
	wantEIO(t, readErr(t, s, 4), "block 4", "0 bytes")
}

func TestETagVerification(t *testing.T) {
	ctx := context.Background()
	data := fill(4096, 0x42)

	// A bit flipped between store and us: the ETag (MD5 of what was
	// stored) no longer matches.
	tb := &tamper{Backend: mem.New(), flip: true}
	s := newStore(t, tb, Options{Prefix: "disk1/", BlockSize: 4096, NumBlocks: 64, VerifyETag: true})
	if err := s.WriteBlock(ctx, 5, data); err != nil {
		t.Fatal(err)
	}
	err := readErr(t, s, 5)
	wantEIO(t, err, "block 5", "disk1/00000005", "ETag")
	if !errors.Is(err, blockstore.ErrCorrupt) {
		t.Errorf("bad ETag: %v, want ErrCorrupt", err)
	}

	// A wrong ETag on an intact body, in upper case: still checked.
	tb.flip, tb.etag = false, "0123456789ABCDEF0123456789ABCDEF"
	wantEIO(t, readErr(t, s, 5), "ETag")
	// The right one in upper case passes (S3-compatible stores vary).
	_, info := getObject(t, tb.Backend, "disk1/00000005")
	tb.etag = strings.ToUpper(info.ETag)
	if err := readErr(t, s, 5); err != nil {
		t.Fatalf("upper-case ETag: %v", err)
	}
	tb.etag = `"` + info.ETag + `"`
	if err := readErr(t, s, 5); err != nil {
		t.Fatalf("quoted ETag: %v", err)
	}

	// ETags that are not plain MD5s (multipart, SSE-C, opaque) are not
	// checked, nor is anything with VerifyETag off (SSE-KMS).
	tb.flip = true
	for _, etag := range []string{info.ETag + "-2", "opaque", "W/" + info.ETag} {
		tb.etag = etag
		if err := readErr(t, s, 5); err != nil {
			t.Errorf("ETag %q checked: %v", etag, err)
		}
	}
	// Nor is an MD5-shaped ETag that the answer calls opaque (a bucket
	// whose default encryption is SSE-KMS: the disk works as with the C
	// s3backer, which never hashes bodies).
	tb.etag, tb.opaque = "0123456789abcdef0123456789abcdef", true
	if err := readErr(t, s, 5); err != nil {
		t.Errorf("opaque MD5-shaped ETag checked: %v", err)
	}
	tb.etag, tb.opaque = "", false
	s2 := newStore(t, tb, Options{Prefix: "disk1/", BlockSize: 4096, NumBlocks: 64})
	buf := make([]byte, 4096)
	if err := s2.ReadBlock(ctx, 5, buf); err != nil || buf[0] != 0x43 {
		t.Fatalf("VerifyETag off: %v, first byte %#x (the flipped one expected)", err, buf[0])
	}
}

func TestUnsupportedEncodingsAreIOErrors(t *testing.T) {
	s, b := memStore(t, nil)
	for i, c := range []struct{ ce, word string }{
		{"gzip", `unknown content encoding "gzip"`},
		{"identity,  br", `unknown content encoding "br"`},
		{"deflate, gzip", `"gzip"`},
		// s3backer compresses first and encrypts last, once each.
		{"encrypt-AES-128-CBC, deflate", "encryption is not the last layer"},
		{"deflate, deflate", "compression is not the first layer"},
		{"zstd, DEFLATE", "compression is not the first layer"},
	} {
		n := uint64(10 + i)
		key := s.Key(n)
		// Even a body of exactly one block must not come back as data.
		put(t, b, key, fill(4096, 1), backend.Meta{ContentType: blockContentType, ContentEncoding: c.ce})
		err := readErr(t, s, n)
		wantEIO(t, err, "block", key, c.word)
		if !errors.Is(err, ErrUnsupportedEncoding) {
			t.Errorf("%q: %v, want ErrUnsupportedEncoding", c.ce, err)
		}
	}
}

func TestIdentityEncodingIsPlain(t *testing.T) {
	s, b := memStore(t, nil)
	put(t, b, s.Key(1), fill(4096, 3), backend.Meta{ContentEncoding: " Identity "})
	buf := make([]byte, 4096)
	if err := s.ReadBlock(context.Background(), 1, buf); err != nil || !bytes.Equal(buf, fill(4096, 3)) {
		t.Fatalf("identity-encoded block: %v", err)
	}
}

func TestDefaultContentEncoding(t *testing.T) {
	ctx := context.Background()
	w, b := memStore(t, func(o *Options) { o.Compress, o.CompressLevel = "deflate", -1 })
	data := fill(4096, 3)
	if err := w.WriteBlock(ctx, 1, data); err != nil {
		t.Fatal(err)
	}
	// A server that drops Content-Encoding.
	body, info := getObject(t, b, w.Key(1))
	info.Meta.ContentEncoding = ""
	put(t, b, w.Key(1), body, info.Meta)
	wantEIO(t, readErr(t, w, 1), "object is", "block size is 4096")

	s := newStore(t, b, Options{Prefix: "disk1/", BlockSize: 4096, NumBlocks: 64, DefaultContentEncoding: "deflate"})
	buf := make([]byte, 4096)
	if err := s.ReadBlock(ctx, 1, buf); err != nil || !bytes.Equal(buf, data) {
		t.Fatalf("with --defaultContentEncoding: %v", err)
	}
	// The object's own header wins over the default.
	put(t, b, s.Key(2), fill(4096, 3), backend.Meta{ContentEncoding: "identity"})
	if err := readErr(t, s, 2); err != nil {
		t.Fatal(err)
	}
}

func TestParseContentEncoding(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                 nil,
		"deflate":                          {"deflate"},
		"deflate, encrypt-AES-128-CBC":     {"deflate", "encrypt-AES-128-CBC"},
		" ZSTD ,\tencrypt-aes-256-cbc\r\n": {"ZSTD", "encrypt-aes-256-cbc"},
		"deflate encrypt-AES-128-CBC":      {"deflate", "encrypt-AES-128-CBC"},
		",,identity, ,deflate,":            {"deflate"},
	} {
		if got := parseContentEncoding(in); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("parseContentEncoding(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaxObjectSize(t *testing.T) {
	// zlib's compressBound(B) + 16, s3backer's read limit (§2.3).
	for b, want := range map[int]int{4096: 4096 + 1 + 0 + 0 + 13 + 16, 1 << 20: 1<<20 + 256 + 64 + 0 + 13 + 16} {
		if got := maxObjectSize(b); got != want {
			t.Errorf("maxObjectSize(%d) = %d, want %d", b, got, want)
		}
	}
}

// flipFirstGets corrupts the body of the first bad GETs, as a server that
// pairs one version's data with another's ETag would.
type flipFirstGets struct {
	*mem.Backend
	bad int
}

func (f *flipFirstGets) Get(ctx context.Context, key string, buf []byte, opt backend.GetOptions) (int, backend.Info, error) {
	n, info, err := f.Backend.Get(ctx, key, buf, opt)
	if err == nil && f.bad > 0 {
		f.bad--
		buf[0] ^= 1
	}
	return n, info, err
}

// A body that fails its ETag is read again; only a persistent mismatch is
// an I/O error.
func TestETagMismatchIsRetried(t *testing.T) {
	for _, c := range []struct{ bad, gets int }{{1, 2}, {2, 3}, {3, 3}} {
		fb := &flipFirstGets{Backend: mem.New()}
		s := newStore(t, fb, Options{BlockSize: 4096, NumBlocks: 4, VerifyETag: true})
		if err := s.WriteBlock(context.Background(), 1, fill(4096, 7)); err != nil {
			t.Fatal(err)
		}
		fb.bad = c.bad
		before := fb.Counts().Gets
		buf := make([]byte, 4096)
		err := s.ReadBlock(context.Background(), 1, buf)
		if gets := fb.Counts().Gets - before; gets != int64(c.gets) {
			t.Errorf("%d bad bodies: %d GETs, want %d", c.bad, gets, c.gets)
		}
		if c.bad < etagAttempts {
			if err != nil || !bytes.Equal(buf, fill(4096, 7)) {
				t.Errorf("%d bad bodies then a good one: %v", c.bad, err)
			}
		} else if !errors.Is(err, syscall.EIO) {
			t.Errorf("%d bad bodies: %v, want EIO", c.bad, err)
		}
	}
}
