package codec

import (
	"bytes"
	"context"
	"testing"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
)

// testKDF keeps Argon2id cheap: tests make many GCM keys.
var testKDF = aead.KDF{Time: 1, MemoryKiB: 64, Threads: 1}

// newStore is New, or for AES-256-GCM Open (with testKDF unless opt names
// a KDF), which reads or makes the disk's key info.
func newStore(t testing.TB, b backend.Backend, opt Options) *Store {
	t.Helper()
	var (
		s   *Store
		err error
	)
	if isGCM(opt) {
		if opt.KDF == (aead.KDF{}) {
			opt.KDF = testKDF
		}
		s, err = Open(context.Background(), b, opt)
	} else {
		s, err = New(b, opt)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// memStore is a store of 64 blocks of 4 KiB under "disk1/" over a fresh
// mem backend.
func memStore(t *testing.T, mutate func(*Options)) (*Store, *mem.Backend) {
	t.Helper()
	b := mem.New()
	opt := Options{Prefix: "disk1/", BlockSize: 4096, NumBlocks: 64, VerifyETag: true}
	if mutate != nil {
		mutate(&opt)
	}
	return newStore(t, b, opt), b
}

func fill(size int, v byte) []byte { return bytes.Repeat([]byte{v}, size) }

// getObject returns a stored object's body and info straight from mem.
func getObject(t *testing.T, b *mem.Backend, key string) ([]byte, backend.Info) {
	t.Helper()
	buf := make([]byte, 1<<20)
	n, info, err := b.Get(context.Background(), key, buf, backend.GetOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return buf[:n], info
}

// put plants an object as another writer (or damage) would leave it.
func put(t *testing.T, b backend.Backend, key string, body []byte, meta backend.Meta) {
	t.Helper()
	if _, err := b.Put(context.Background(), key, body, meta); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// encodeOnce is WriteBlock without the backend: the block's object body
// and metadata, in the pooled buffers scratch, which the caller returns.
func (s *Store) encodeOnce(n uint64, data []byte, scratch [2]*[]byte) (body []byte, meta backend.Meta, err error) {
	meta.ContentType = blockContentType
	body, err = s.chain.encode(n, data, &meta, [2][]byte{*scratch[0], *scratch[1]})
	return body, meta, err
}

func (s *Store) getScratch() [2]*[]byte  { return [2]*[]byte{s.bufs.get(), s.bufs.get()} }
func (s *Store) putScratch(b [2]*[]byte) { s.bufs.put(b[0]); s.bufs.put(b[1]) }

func isGCM(o Options) bool { return o.Encrypt == aead.Name }
