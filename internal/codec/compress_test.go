package codec

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"testing"

	kzstd "github.com/klauspost/compress/zstd"

	"github.com/s3backer-go/s3backer/internal/backend/mem"

	"github.com/s3backer-go/s3backer/internal/backend"
)

func unhexT(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mixed is a block that compresses somewhat: text, random bytes, zeros.
func mixed(size int) []byte {
	b := make([]byte, size)
	for i := 0; i < size/2; i++ {
		b[i] = "the quick brown fox jumps over the lazy dog "[i%44]
	}
	_, _ = rand.Read(b[size/2 : size*3/4])
	return b
}

// What "deflate" writes is the zlib format, which Go's own (independent)
// zlib reader decodes, with zlib's header level bits.
func TestDeflateIsZlib(t *testing.T) {
	ctx := context.Background()
	for level, flg := range map[int]byte{-1: 0x9c, 0: 0x01, 1: 0x01, 2: 0x5e, 6: 0x9c, 9: 0xda} {
		s, b := memStore(t, func(o *Options) { o.Compress, o.CompressLevel = "deflate", level })
		data := mixed(4096)
		if err := s.WriteBlock(ctx, 1, data); err != nil {
			t.Fatal(err)
		}
		body, info := getObject(t, b, s.Key(1))
		if info.ContentEncoding != "deflate" {
			t.Errorf("level %d: Content-Encoding %q", level, info.ContentEncoding)
		}
		if body[0] != 0x78 || body[1] != flg {
			t.Errorf("level %d: zlib header %x, want 78%02x", level, body[:2], flg)
		}
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("level %d: stdlib zlib reads %d bytes, %v", level, len(got), err)
		}
		if level != 0 && len(body) >= len(data) {
			t.Errorf("level %d: %d bytes compressed to %d", level, len(data), len(body))
		}
	}
}

// What "zstd" writes is one frame with the content size and no checksum,
// like ZSTD_compress's; the reference decoder's rules are klauspost's
// here, so the frame header is checked byte by byte.
func TestZstdFrame(t *testing.T) {
	s, b := memStore(t, func(o *Options) { o.Compress, o.CompressLevel = "zstd", 3 })
	data := mixed(4096)
	if err := s.WriteBlock(context.Background(), 1, data); err != nil {
		t.Fatal(err)
	}
	body, info := getObject(t, b, s.Key(1))
	if info.ContentEncoding != "zstd" {
		t.Errorf("Content-Encoding %q", info.ContentEncoding)
	}
	var h kzstd.Header
	if err := h.Decode(body); err != nil {
		t.Fatal(err)
	}
	if !h.HasFCS || h.FrameContentSize != 4096 || h.HasCheckSum || h.DictionaryID != 0 {
		t.Errorf("frame header %+v", h)
	}
	if !bytes.Equal(body[:5], unhexT(t, "28b52ffd60")) { // as the C s3backer's (§15)
		t.Errorf("frame starts %x", body[:5])
	}
}

// Objects the C s3backer wrote (§15) read back.
func TestKnownCompressedBlocks(t *testing.T) {
	for _, c := range []struct {
		ce, body string
		fill     byte
	}{
		{"deflate", "789cedc1010d000000c2a06eef1fca1e0e28000000e0dd000f3c203d", 'B'},
		{"zstd", "28b52ffd60000f4d00001001010100fbf70116", 0x01},
	} {
		s, b := memStore(t, nil) // no --compress: reading needs none
		put(t, b, s.Key(0), unhexT(t, c.body), backend.Meta{ContentType: blockContentType, ContentEncoding: c.ce})
		buf := make([]byte, 4096)
		if err := s.ReadBlock(context.Background(), 0, buf); err != nil || !bytes.Equal(buf, fill(4096, c.fill)) {
			t.Errorf("%s: %v", c.ce, err)
		}
	}
}

// Reading follows each object's Content-Encoding, whatever this store
// writes.
func TestDecompressionFollowsContentEncoding(t *testing.T) {
	ctx := context.Background()
	b := &tamper{Backend: mem.New()}
	writers := []Options{{}, {Compress: "deflate", CompressLevel: 1}, {Compress: "zstd", CompressLevel: 3}}
	data := mixed(4096)
	for i, w := range writers {
		o := Options{Prefix: "disk1/", BlockSize: 4096, NumBlocks: 64, VerifyETag: true}
		withEncoding(&o, w)
		if err := newStore(t, b, o).WriteBlock(ctx, uint64(i), data); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range writers {
		o := Options{Prefix: "disk1/", BlockSize: 4096, NumBlocks: 64, VerifyETag: true}
		withEncoding(&o, r)
		s := newStore(t, b, o)
		for i := range writers {
			buf := make([]byte, 4096)
			if err := s.ReadBlock(ctx, uint64(i), buf); err != nil || !bytes.Equal(buf, data) {
				t.Errorf("%s store reading block %d: %v", encodingName(r), i, err)
			}
		}
	}
	// The tokens' case does not matter.
	body, info := getObject(t, b.Backend, "disk1/00000002")
	info.Meta.ContentEncoding = " ZSTD "
	put(t, b, "disk1/00000002", body, info.Meta)
	if err := readErr(t, newStore(t, b, Options{Prefix: "disk1/", BlockSize: 4096, NumBlocks: 64}), 2); err != nil {
		t.Error(err)
	}
}

// A damaged or wrong-sized compressed object is an I/O error, never data.
// The damage is planted as a new object, so its ETag matches and the
// decoder is what must notice.
func TestCorruptCompressedIsEIO(t *testing.T) {
	ctx := context.Background()
	zlibOf := func(b []byte) []byte {
		var w bytes.Buffer
		zw := zlib.NewWriter(&w)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return w.Bytes()
	}
	zstdOf := func(b []byte) []byte {
		e, _ := kzstd.NewWriter(nil)
		defer e.Close()
		return e.EncodeAll(b, nil)
	}
	good := map[string][]byte{"deflate": zlibOf(mixed(4096)), "zstd": zstdOf(mixed(4096))}
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x55; return b }
	for _, c := range []struct {
		name, ce string
		body     []byte
		word     string
	}{
		{"deflate header", "deflate", flip(good["deflate"], 0), "zlib"},
		{"deflate stream", "deflate", flip(good["deflate"], len(good["deflate"])/2), "deflate"},
		{"deflate adler", "deflate", flip(good["deflate"], len(good["deflate"])-1), "checksum"},
		{"deflate truncated", "deflate", good["deflate"][:len(good["deflate"])-5], "deflate"},
		{"deflate raw", "deflate", good["deflate"][2:], "zlib"},
		{"deflate empty", "deflate", nil, "zlib"},
		{"deflate short block", "deflate", zlibOf(mixed(4095)), "decodes to 4095 bytes"},
		{"deflate long block", "deflate", zlibOf(mixed(4097)), "more than a block"},
		{"deflate bomb", "deflate", zlibOf(make([]byte, 1<<20)), "more than a block"},
		{"zstd magic", "zstd", flip(good["zstd"], 0), "zstd"},
		{"zstd stream", "zstd", flip(good["zstd"], len(good["zstd"])/2), "zstd"},
		{"zstd truncated", "zstd", good["zstd"][:len(good["zstd"])-3], "zstd"},
		{"zstd short block", "zstd", zstdOf(mixed(4095)), "decodes to 4095 bytes"},
		{"zstd long block", "zstd", zstdOf(mixed(4097)), "zstd"},
		{"zstd bomb", "zstd", zstdOf(make([]byte, 1<<24)), "zstd"},
		{"plain as deflate", "deflate", mixed(4096), "zlib"},
	} {
		s, b := memStore(t, nil)
		put(t, b, s.Key(7), c.body, backend.Meta{ContentType: blockContentType, ContentEncoding: c.ce})
		err := readErr(t, s, 7)
		if err == nil {
			t.Errorf("%s: read succeeded", c.name)
			continue
		}
		wantEIO(t, err, "block 7", c.word)
	}
	_ = ctx
}
