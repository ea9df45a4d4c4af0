package codec

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/blockcrypt"
)

// FuzzDecode feeds arbitrary objects (body, Content-Encoding, HMAC header,
// block number) to the decoder of a CBC store, a GCM store and a plain
// one. None may panic or touch the caller's buffer on error, and the
// encrypting ones may return data only for a body that authenticates
// (HMAC, or GCM tag under the block's AAD). Seeds: valid objects of every
// encoding (and the C s3backer's block 0).
func FuzzDecode(f *testing.F) {
	mk := func(tb testing.TB, e Options) *Store {
		o := Options{Bucket: "mybucket", Prefix: "disk1/", HashPrefix: true, BlockSize: 4096, NumBlocks: 64}
		withEncoding(&o, e)
		o.Bucket = "mybucket"
		return newStore(tb, mem.New(), o)
	}
	enc := mk(f, Options{Encrypt: "AES-128-CBC", Password: []byte("pw")})
	plain := mk(f, Options{})
	// One GCM disk for the seeds and the store under test alike: the
	// seeds must carry its key.
	gcmBackend := mem.New()
	mkGCM := func(e Options) *Store {
		o := Options{Bucket: "mybucket", Prefix: "disk1/", HashPrefix: true, BlockSize: 4096, NumBlocks: 64}
		withEncoding(&o, e)
		return newStore(f, gcmBackend, o)
	}
	gcm := mkGCM(Options{Encrypt: aead.Name, Password: []byte("pw")})
	gcmCipher := gcm.chain.write[0].(*gcmLayer).c
	ci, err := blockcrypt.New("AES-128-CBC", []byte("pw"), blockcrypt.Salt("mybucket", "disk1/"), 0)
	if err != nil {
		f.Fatal(err)
	}

	for i, e := range []Options{
		{Encrypt: "AES-128-CBC", Password: []byte("pw")},
		{Compress: "zstd", Encrypt: "AES-128-CBC", Password: []byte("pw")},
		{Compress: "deflate", CompressLevel: 9},
		{Compress: "zstd", CompressLevel: 3},
		{Encrypt: aead.Name, Password: []byte("pw")},
		{Compress: "deflate", Encrypt: aead.Name, Password: []byte("pw")},
		{Compress: "zstd", Encrypt: aead.Name, Password: []byte("pw")},
	} {
		var s *Store
		if isGCM(e) {
			s = mkGCM(e) // the same key, read from the key info
		} else {
			s = mk(f, e)
		}
		for j, data := range [][]byte{mixed(4096), fill(4096, 'B')} {
			n := uint64(i*2 + j)
			sc := s.getScratch()
			body, meta, err := s.encodeOnce(n, data, sc)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(bytes.Clone(body), meta.ContentEncoding, meta.User[metaHMAC], uint8(n))
			s.putScratch(sc)
		}
	}
	f.Add(unhexT(f, "b70b1a8b2a7c7d5fb073f7395094b351517ecd341658e521a86c495f56c83ca4"),
		"deflate, encrypt-AES-128-CBC", `"efae8ca3ea56d7137e6e54036d882b14530ad3b1"`, uint8(0))
	f.Add(fill(4096, 7), "", "", uint8(1))

	f.Fuzz(func(t *testing.T, body []byte, ce, hmac string, block uint8) {
		n := uint64(block) % 64
		meta := backend.Meta{ContentEncoding: ce}
		if hmac != "" {
			meta.User = map[string]string{metaHMAC: hmac}
		}
		for _, s := range []*Store{enc, gcm, plain} {
			if len(body) > s.bufs.size {
				return // the backend refuses these before the decoder sees them
			}
			obj := s.bufs.get()
			*obj = append((*obj)[:0], body...)
			buf := fill(4096, 0xee)
			err := s.decode(n, *obj, meta, buf)
			s.bufs.put(obj)
			if err != nil {
				if !bytes.Equal(buf, fill(4096, 0xee)) {
					t.Fatal("failed decode changed the caller's buffer")
				}
				continue
			}
			if s == gcm {
				tokens := parseContentEncoding(ce)
				if len(tokens) == 0 || !strings.EqualFold(tokens[len(tokens)-1], "encrypt-AES-256-GCM") {
					t.Fatalf("GCM store decoded an object not encrypted with GCM: Content-Encoding %q", ce)
				}
				inner := strings.ToLower(strings.Join(tokens[:len(tokens)-1], ", "))
				if _, err := gcmCipher.Open(nil, body, n, inner); err != nil {
					t.Fatalf("GCM store decoded an object that does not authenticate: Content-Encoding %q", ce)
				}
			}
			if s == enc {
				tokens := parseContentEncoding(ce)
				mac, ok := parseMAC(hmac)
				want := ci.MAC(n, body)
				if len(tokens) == 0 || !strings.EqualFold(tokens[len(tokens)-1], "encrypt-AES-128-CBC") || !ok || mac != want {
					t.Fatalf("decoded an object that does not authenticate: Content-Encoding %q, HMAC %q", ce, hmac)
				}
			}
		}
	})
}

// The decoder under ReadBlock is the one fuzzed: one end-to-end check that
// the fuzz store's settings read what they wrote.
func TestFuzzStoresRoundTrip(t *testing.T) {
	s := newStore(t, mem.New(), Options{Bucket: "mybucket", Prefix: "disk1/", HashPrefix: true, BlockSize: 4096, NumBlocks: 64,
		Encrypt: "AES-128-CBC", Password: []byte("pw")})
	data := mixed(4096)
	if err := s.WriteBlock(context.Background(), 9, data); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if err := s.ReadBlock(context.Background(), 9, buf); err != nil || !bytes.Equal(buf, data) {
		t.Fatal(err)
	}
}
