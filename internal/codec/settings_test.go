package codec

import (
	"fmt"
	"testing"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
)

// encodings are the settings every round-trip test covers: each
// algorithm at its edge and default levels, each cipher.
var encodings = []Options{
	{Compress: "deflate", CompressLevel: -1},
	{Compress: "deflate", CompressLevel: 0},
	{Compress: "deflate", CompressLevel: 1},
	{Compress: "deflate", CompressLevel: 6},
	{Compress: "deflate", CompressLevel: 9},
	{Compress: "zstd", CompressLevel: -7},
	{Compress: "zstd", CompressLevel: 0},
	{Compress: "zstd", CompressLevel: 1},
	{Compress: "zstd", CompressLevel: 3},
	{Compress: "zstd", CompressLevel: 7},
	{Compress: "zstd", CompressLevel: 22},
	{Encrypt: "AES-128-CBC", Password: []byte("pw")}, // implies deflate
	{Compress: "deflate", CompressLevel: 9, Encrypt: "AES-192-CBC", Password: []byte("pw")},
	{Compress: "deflate", CompressLevel: -1, Encrypt: "AES-256-CBC", Password: []byte("pw")},
	{Compress: "zstd", CompressLevel: 3, Encrypt: "AES-256-CBC", Password: []byte("pw"), KeyLength: 64},
	{Encrypt: aead.Name, Password: []byte("pw")}, // GCM alone: no compression
	{Compress: "deflate", CompressLevel: -1, Encrypt: aead.Name, Password: []byte("pw")},
	{Compress: "zstd", CompressLevel: 3, Encrypt: aead.Name, Password: []byte("pw")},
}

func encodingName(o Options) string {
	switch {
	case o.Compress == "" && o.Encrypt == "":
		return "plain"
	case o.Compress == "" && isGCM(o):
		return "plain+" + o.Encrypt
	case o.Compress == "":
		o.Compress, o.CompressLevel = "deflate", -1 // what CBC implies
	}
	s := fmt.Sprintf("%s%d", o.Compress, o.CompressLevel)
	if o.Encrypt != "" {
		s += "+" + o.Encrypt
		if o.KeyLength != 0 {
			s += fmt.Sprintf("/%d", o.KeyLength)
		}
	}
	return s
}

// withEncoding applies an encoding setting to a store's options (and a
// bucket name, which encryption needs for its salt).
func withEncoding(o *Options, e Options) {
	o.Compress, o.CompressLevel = e.Compress, e.CompressLevel
	o.Encrypt, o.Password, o.KeyLength = e.Encrypt, e.Password, e.KeyLength
	o.Bucket = "mybucket"
}

func TestConformanceEncodings(t *testing.T) {
	for _, e := range encodings {
		t.Run(encodingName(e), func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, storetest.Harness{
				New: func(t *testing.T, bs int, n uint64) blockstore.Store {
					o := Options{Prefix: "disk1/", HashPrefix: true, VerifyETag: true, BlockSize: bs, NumBlocks: n}
					withEncoding(&o, e)
					return newStore(t, mem.New(), o)
				},
				Reopen: func(t *testing.T, s blockstore.Store) blockstore.Store {
					old := s.(*Store)
					if err := old.Close(); err != nil {
						t.Fatal(err)
					}
					return newStore(t, old.b, old.opt)
				},
			})
		})
	}
}

func TestNewRejectsBadEncodings(t *testing.T) {
	for _, e := range []Options{
		{Compress: "lz4"},
		{Compress: "Deflate", CompressLevel: -1}, // config canonicalises; the codec does not guess
		{Compress: "deflate", CompressLevel: 10},
		{Compress: "deflate", CompressLevel: -2},
		{Compress: "zstd", CompressLevel: 23},
		{Compress: "zstd", CompressLevel: -(1 << 17) - 1},
		{Encrypt: "AES-128-ECB", Bucket: "b"},
		{Encrypt: "DES-CBC", Bucket: "b"},
		{Encrypt: "AES-128-CBC"}, // no bucket: no salt
		{Encrypt: "AES-256-CBC", Bucket: "b", KeyLength: 16},
		{Encrypt: "AES-128-CBC", Bucket: "b", KeyLength: 65},
		{Encrypt: "AES-128-CBC", Bucket: "b", BlockSize: 8}, // not a multiple of 16
	} {
		if e.BlockSize == 0 {
			e.BlockSize = 4096
		}
		e.NumBlocks = 1
		if _, err := New(mem.New(), e); err == nil {
			t.Errorf("New(%s, bucket %q, block size %d) succeeded", encodingName(e), e.Bucket, e.BlockSize)
		}
	}
	// Case does not matter for the cipher, as in s3backer.
	if _, err := New(mem.New(), Options{BlockSize: 4096, NumBlocks: 1, Encrypt: "aes-128-cbc", Bucket: "b"}); err != nil {
		t.Error(err)
	}
}
