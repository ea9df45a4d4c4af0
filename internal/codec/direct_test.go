package codec

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// getSpy records the buffers GETs are made into.
type getSpy struct {
	*mem.Backend
	into [][]byte
}

func (g *getSpy) Get(ctx context.Context, key string, buf []byte, opt backend.GetOptions) (int, backend.Info, error) {
	g.into = append(g.into, buf)
	return g.Backend.Get(ctx, key, buf, opt)
}

// A disk of plain blocks GETs straight into the caller's buffer; an object
// larger than a block is fetched again into an object buffer (and is
// still corrupt); an encoded object (another configuration wrote it) is
// decoded from a copy. An encoded disk never GETs into the caller's buffer.
func TestDirectReads(t *testing.T) {
	ctx := context.Background()
	spy := &getSpy{Backend: mem.New()}
	s := newStore(t, spy, Options{Prefix: "disk1/", BlockSize: 4096, NumBlocks: 64, VerifyETag: true})
	data := fill(4096, 3)
	data[100] = 9
	if err := s.WriteBlock(ctx, 1, data); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if err := s.ReadBlock(ctx, 1, buf); err != nil || !bytes.Equal(buf, data) {
		t.Fatalf("plain read: %v", err)
	}
	if len(spy.into) != 1 || &spy.into[0][0] != &buf[0] {
		t.Fatal("plain read not made into the caller's buffer")
	}

	spy.into = nil
	put(t, spy, s.Key(2), fill(4097, 1), backend.Meta{})
	if err := s.ReadBlock(ctx, 2, buf); !errors.Is(err, blockstore.ErrCorrupt) {
		t.Fatalf("object larger than a block: %v, want corrupt", err)
	}
	if len(spy.into) != 2 || len(spy.into[1]) <= 4096 {
		t.Fatalf("object larger than a block: %d GETs, want a second into an object buffer", len(spy.into))
	}

	z := newStore(t, mem.New(), Options{Prefix: "disk1/", BlockSize: 4096, NumBlocks: 64, Compress: "deflate"})
	if err := z.WriteBlock(ctx, 3, data); err != nil {
		t.Fatal(err)
	}
	body, info := getObject(t, z.b.(*mem.Backend), z.Key(3))
	put(t, spy, s.Key(3), body, info.Meta)
	spy.into = nil
	clear(buf)
	if err := s.ReadBlock(ctx, 3, buf); err != nil || !bytes.Equal(buf, data) {
		t.Fatalf("compressed object on a plain disk: %v", err)
	}

	zs := &getSpy{Backend: z.b.(*mem.Backend)}
	z.b = zs
	if err := z.ReadBlock(ctx, 3, buf); err != nil || !bytes.Equal(buf, data) {
		t.Fatalf("compressed disk: %v", err)
	}
	if &zs.into[0][0] == &buf[0] {
		t.Fatal("an encoded disk read into the caller's buffer")
	}
}
