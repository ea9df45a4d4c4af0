package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
)

func TestConformance(t *testing.T) {
	for _, o := range []Options{{}, {Prefix: "disk1/", HashPrefix: true, VerifyETag: true}} {
		t.Run(o.Prefix, func(t *testing.T) {
			storetest.Run(t, storetest.Harness{
				New: func(t *testing.T, bs int, n uint64) blockstore.Store {
					o := o
					o.BlockSize, o.NumBlocks = bs, n
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

func TestNewRejectsBadGeometry(t *testing.T) {
	for _, o := range []Options{
		{BlockSize: 0, NumBlocks: 1},
		{BlockSize: 3000, NumBlocks: 1},
		{BlockSize: 4096, NumBlocks: 0},
		{BlockSize: 4096, NumBlocks: 1 << 32},
		{BlockSize: 4096, NumBlocks: 1, ListThreads: -1},
	} {
		if _, err := New(mem.New(), o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	if _, err := New(nil, Options{BlockSize: 4096, NumBlocks: 1}); err == nil {
		t.Error("New without a backend succeeded")
	}
	if _, err := New(mem.New(), Options{BlockSize: 512, NumBlocks: 1<<32 - 1}); err != nil {
		t.Errorf("largest disk refused: %v", err)
	}
}

func TestKeysAndHeaders(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		hash bool
		n    uint64
		key  string
	}{
		{false, 0, "disk1/00000000"},
		{false, 26, "disk1/0000001a"},
		{true, 0, "disk1/c448b72c-00000000"},
		{true, 5, "disk1/6a03ab82-00000005"},
		{true, 0x10, "disk1/5150b901-00000010"},
	} {
		s, b := memStore(t, func(o *Options) { o.HashPrefix = c.hash })
		data := fill(4096, byte(c.n)+1)
		if err := s.WriteBlock(ctx, c.n, data); err != nil {
			t.Fatal(err)
		}
		if keys := b.Keys(); len(keys) != 1 || keys[0] != c.key {
			t.Fatalf("block %d (hash %v) stored as %q, want %q", c.n, c.hash, keys, c.key)
		}
		if s.Key(c.n) != c.key {
			t.Errorf("Key(%d) = %q", c.n, s.Key(c.n))
		}
		body, info := getObject(t, b, c.key)
		if !bytes.Equal(body, data) {
			t.Errorf("block %d: stored body differs from the block (plain format)", c.n)
		}
		if info.ContentType != "application/x-s3backer-block" || info.ContentEncoding != "" {
			t.Errorf("block %d: Content-Type %q, Content-Encoding %q", c.n, info.ContentType, info.ContentEncoding)
		}
		if c.n == 0 {
			want := map[string]string{"s3backer-blocksize": "4096", "s3backer-filesize": "262144"}
			if len(info.User) != 2 || info.User["s3backer-blocksize"] != want["s3backer-blocksize"] ||
				info.User["s3backer-filesize"] != want["s3backer-filesize"] {
				t.Errorf("block 0 metadata %v, want %v", info.User, want)
			}
		} else if len(info.User) != 0 {
			t.Errorf("block %d carries metadata %v; only block 0 does", c.n, info.User)
		}
	}
}

// The file size is 64-bit (the 1.5.x 32-bit bug is not ours to copy).
func TestBlockZeroFileSizeIs64Bit(t *testing.T) {
	s, b := memStore(t, func(o *Options) { o.BlockSize, o.NumBlocks = 65536, 1<<20 }) // 64 GiB
	if err := s.WriteBlock(context.Background(), 0, fill(65536, 7)); err != nil {
		t.Fatal(err)
	}
	_, info := getObject(t, b, "disk1/00000000")
	if got := info.User["s3backer-filesize"]; got != "68719476736" {
		t.Fatalf("filesize %q, want 68719476736", got)
	}
}

func TestZeroWriteIsDelete(t *testing.T) {
	ctx := context.Background()
	s, b := memStore(t, nil)
	if err := s.WriteBlock(ctx, 3, fill(4096, 9)); err != nil {
		t.Fatal(err)
	}
	before := b.Counts()
	for _, zero := range [][]byte{make([]byte, 4096), nil} {
		if err := s.WriteBlock(ctx, 3, zero); err != nil {
			t.Fatal(err)
		}
	}
	// A block never written, zeroed: still a DELETE, never a PUT.
	if err := s.WriteBlock(ctx, 4, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	after := b.Counts()
	if after.Puts != before.Puts || after.Deletes != before.Deletes+3 {
		t.Fatalf("zero writes cost %d PUTs and %d DELETEs, want 0 and 3",
			after.Puts-before.Puts, after.Deletes-before.Deletes)
	}
	if len(b.Keys()) != 0 {
		t.Fatalf("objects left: %v", b.Keys())
	}
}

func TestWriteErrorsNameTheBlock(t *testing.T) {
	s, _ := memStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.WriteBlock(ctx, 7, fill(4096, 1))
	if !errors.Is(err, context.Canceled) || !bytes.Contains([]byte(err.Error()), []byte("block 7")) {
		t.Fatalf("canceled write: %v", err)
	}
	err = s.ReadBlock(ctx, 7, make([]byte, 4096))
	if !errors.Is(err, context.Canceled) || !bytes.Contains([]byte(err.Error()), []byte("block 7")) {
		t.Fatalf("canceled read: %v", err)
	}
}

func TestZeroBlocksIsBulkDelete(t *testing.T) {
	ctx := context.Background()
	s, b := memStore(t, func(o *Options) { o.BlockSize, o.NumBlocks = 512, 5000 })
	var blocks []uint64
	for n := uint64(0); n < 2500; n++ {
		if err := s.WriteBlock(ctx, n, fill(512, byte(n)|1)); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, n)
	}
	// Zeroing blocks that hold nothing is fine too.
	blocks = append(blocks, 4000, 4001)
	before := b.Counts()
	if err := s.ZeroBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	after := b.Counts()
	if after.DeleteManys-before.DeleteManys != 3 || after.Deletes != before.Deletes || after.Puts != before.Puts {
		t.Fatalf("ZeroBlocks of 2502 blocks: %+v -> %+v, want 3 bulk deletes only", before, after)
	}
	if len(b.Keys()) != 0 {
		t.Fatalf("%d objects left", len(b.Keys()))
	}
	if err := s.ZeroBlocks(ctx, nil); err != nil || b.Counts().DeleteManys != after.DeleteManys {
		t.Fatalf("empty ZeroBlocks: %v, or it made a request", err)
	}
	if err := s.ZeroBlocks(ctx, []uint64{1, 5000}); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("ZeroBlocks past the end: %v, want EINVAL", err)
	}
}

// noBulk is a backend without multi-object delete, as Google Cloud
// Storage was: every DeleteMany is refused as unsupported.
type noBulk struct {
	*mem.Backend
	refused int
}

func (b *noBulk) DeleteMany(context.Context, []string) error {
	b.refused++
	return &backend.Permanent{Err: fmt.Errorf("HTTP 501 NotImplemented: %w", errors.ErrUnsupported)}
}

func TestZeroBlocksWithoutBulkDelete(t *testing.T) {
	ctx := context.Background()
	b := &noBulk{Backend: mem.New()}
	s := newStore(t, b, Options{Prefix: "disk1/", BlockSize: 512, NumBlocks: 5000})
	for n := uint64(0); n < 100; n++ {
		if err := s.WriteBlock(ctx, n, fill(512, byte(n)|1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, blocks := range [][]uint64{{0, 1, 2, 4000}, {3, 4, 5, 6, 7, 8, 9}} {
		if err := s.ZeroBlocks(ctx, blocks); err != nil {
			t.Fatal(err)
		}
	}
	if c := b.Counts(); b.refused != 1 || c.Deletes != 11 {
		t.Fatalf("%d refused bulk deletes and %d DELETEs, want 1 (the first call only) and 11", b.refused, c.Deletes)
	}
	if got := len(b.Keys()); got != 90 {
		t.Fatalf("%d objects left, want 90", got)
	}
}

func TestFlushAndCloseMakeNoRequests(t *testing.T) {
	s, b := memStore(t, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c := b.Counts(); c != (mem.Counts{}) {
		t.Fatalf("requests made: %+v", c)
	}
}
