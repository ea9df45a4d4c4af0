package volume

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
)

const bs = 512

var ctx = context.Background()

// Random unaligned reads, writes and zeroes must match a plain byte slice,
// over a store that reads only whole blocks and over one that reads parts.
func TestMatchesReference(t *testing.T) {
	t.Run("blocks", func(t *testing.T) {
		store := memstore.New(bs, 32)
		matchesReference(t, store, store)
	})
	t.Run("parts", func(t *testing.T) {
		store := memstore.New(bs, 32)
		ps := &partStore{Store: store}
		matchesReference(t, ps, store)
		if ps.parts.Load() == 0 {
			t.Fatal("no partial read used ReadPart")
		}
	})
	t.Run("part writes", func(t *testing.T) {
		store := memstore.New(bs, 32)
		pw := &partWriteStore{partStore: &partStore{Store: store}}
		matchesReference(t, pw, store)
		if pw.writes.Load() == 0 || pw.zeroes.Load() == 0 {
			t.Fatalf("%d partial writes and %d partial zeroes used WritePart", pw.writes.Load(), pw.zeroes.Load())
		}
	})
}

func matchesReference(t *testing.T, s blockstore.Store, store *memstore.Store) {
	const nblocks = 32
	v := New(s, Options{Parallel: 4})
	ref := make([]byte, bs*nblocks)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		off := rng.Int64N(int64(len(ref)))
		n := rng.Int64N(min(int64(len(ref))-off, 5*bs) + 1)
		switch rng.IntN(3) {
		case 0:
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(rng.IntN(256))
			}
			if err := v.WriteAt(ctx, p, off, false); err != nil {
				t.Fatal(err)
			}
			copy(ref[off:], p)
		case 1:
			if err := v.Zero(ctx, off, n, false); err != nil {
				t.Fatal(err)
			}
			clear(ref[off : off+n])
		case 2:
			p := make([]byte, n)
			if err := v.ReadAt(ctx, p, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, ref[off:off+n]) {
				t.Fatalf("op %d: read %d+%d differs from reference", i, off, n)
			}
		}
	}
	// Zero blocks are never stored.
	want := 0
	for b := 0; b < nblocks; b++ {
		if !blockstore.IsZero(ref[b*bs : (b+1)*bs]) {
			want++
		}
	}
	if store.Stored() != want {
		t.Fatalf("store holds %d blocks, %d are non-zero", store.Stored(), want)
	}
}

func TestPartialZeroingDeletesBlock(t *testing.T) {
	store := memstore.New(bs, 4)
	v := New(store, Options{})
	if err := v.WriteAt(ctx, []byte{1, 2, 3}, bs+10, false); err != nil {
		t.Fatal(err)
	}
	if store.Stored() != 1 {
		t.Fatalf("stored %d blocks after a 3-byte write, want 1", store.Stored())
	}
	if err := v.WriteAt(ctx, []byte{0, 0, 0}, bs+10, false); err != nil {
		t.Fatal(err)
	}
	if store.Stored() != 0 {
		t.Fatal("block that became all zero is still stored")
	}
}

// Many writers hitting disjoint bytes of the same blocks: every update must
// survive the read-modify-write cycles, also through a PartWriter that
// does not order its own writers of a block (the volume must).
func TestConcurrentPartialWritesLoseNothing(t *testing.T) {
	t.Run("blocks", func(t *testing.T) { concurrentPartialWrites(t, memstore.New(bs, 2)) })
	t.Run("parts", func(t *testing.T) {
		pw := &partWriteStore{partStore: &partStore{Store: memstore.New(bs, 2)}}
		concurrentPartialWrites(t, pw)
		if pw.writes.Load() == 0 {
			t.Fatal("no partial write used WritePart")
		}
	})
}

func concurrentPartialWrites(t *testing.T, store blockstore.Store) {
	v := New(store, Options{})
	var wg sync.WaitGroup
	for w := 0; w < 2*bs; w += 8 {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if err := v.WriteAt(ctx, bytes.Repeat([]byte{byte(w/8) | 1}, 8), int64(w), false); err != nil {
				t.Error(err)
			}
		}(w)
	}
	wg.Wait()
	got := make([]byte, 2*bs)
	if err := v.ReadAt(ctx, got, 0); err != nil {
		t.Fatal(err)
	}
	for w := 0; w < 2*bs; w += 8 {
		if !bytes.Equal(got[w:w+8], bytes.Repeat([]byte{byte(w/8) | 1}, 8)) {
			t.Fatalf("update at byte %d lost", w)
		}
	}
}

func TestRangeAndReadOnlyErrors(t *testing.T) {
	v := New(memstore.New(bs, 4), Options{})
	size := int64(4 * bs)
	for _, c := range []struct{ off, n int64 }{{size, 1}, {size - 1, 2}, {-1, 1}, {1 << 62, 1 << 62}} {
		if err := v.ReadAt(ctx, make([]byte, c.n%4096), c.off); c.n%4096 != 0 && !errors.Is(err, syscall.EINVAL) {
			t.Errorf("read %d+%d: %v, want EINVAL", c.off, c.n, err)
		}
		if err := v.Zero(ctx, c.off, c.n, false); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("zero %d+%d: %v, want EINVAL", c.off, c.n, err)
		}
	}
	if err := v.ReadAt(ctx, nil, size); err != nil {
		t.Errorf("empty read at the end: %v", err)
	}
	ro := New(memstore.New(bs, 4), Options{ReadOnly: true})
	if err := ro.WriteAt(ctx, []byte{1}, 0, false); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to read-only volume: %v, want EROFS", err)
	}
	if err := ro.Zero(ctx, 0, bs, false); !errors.Is(err, syscall.EROFS) {
		t.Errorf("zero on read-only volume: %v, want EROFS", err)
	}
}

// flushCounter counts flushes and can fail block writes.
type flushCounter struct {
	blockstore.Store
	flushes atomic.Int32
	fail    error
}

func (f *flushCounter) Flush(ctx context.Context) error {
	f.flushes.Add(1)
	return f.Store.Flush(ctx)
}

func (f *flushCounter) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	if f.fail != nil {
		return f.fail
	}
	return f.Store.WriteBlock(ctx, n, data)
}

func TestFUAFlushes(t *testing.T) {
	fc := &flushCounter{Store: memstore.New(bs, 4)}
	v := New(fc, Options{})
	if err := v.WriteAt(ctx, []byte{1}, 0, false); err != nil {
		t.Fatal(err)
	}
	if fc.flushes.Load() != 0 {
		t.Fatal("plain write flushed")
	}
	if err := v.WriteAt(ctx, []byte{1}, 0, true); err != nil {
		t.Fatal(err)
	}
	if err := v.Zero(ctx, 0, bs, true); err != nil {
		t.Fatal(err)
	}
	if fc.flushes.Load() != 2 {
		t.Fatalf("%d flushes after two FUA requests, want 2", fc.flushes.Load())
	}
}

func TestStoreErrorsPropagate(t *testing.T) {
	fc := &flushCounter{Store: memstore.New(bs, 8), fail: blockstore.ErrCorrupt}
	v := New(fc, Options{})
	err := v.WriteAt(ctx, make([]byte, 4*bs), bs/2, false)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("write over a failing store: %v, want EIO", err)
	}
	if fc.flushes.Load() != 0 {
		t.Fatal("failed write flushed")
	}
}

func TestExtents(t *testing.T) {
	store := memstore.New(bs, 8)
	v := New(store, Options{})
	if err := v.WriteAt(ctx, []byte{9}, 2*bs+5, false); err != nil { // block 2
		t.Fatal(err)
	}
	if err := v.WriteAt(ctx, []byte{9}, 3*bs, false); err != nil { // block 3
		t.Fatal(err)
	}
	got, err := v.Extents(ctx, 10, 6*bs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Extent{{2*bs - 10, true}, {2 * bs, false}, {2*bs + 10, true}}
	if len(got) != len(want) {
		t.Fatalf("extents %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("extents %v, want %v", got, want)
		}
	}
}

// bulkStore counts ZeroBlocks calls over a memstore.
type bulkStore struct {
	*memstore.Store
	mu     sync.Mutex
	calls  int
	zeroed map[uint64]bool
}

func (b *bulkStore) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	b.mu.Lock()
	b.calls++
	for _, n := range blocks {
		b.zeroed[n] = true
	}
	b.mu.Unlock()
	for _, n := range blocks {
		if err := b.Store.WriteBlock(ctx, n, nil); err != nil {
			return err
		}
	}
	return nil
}

// Large zero ranges go to the store's bulk call in batches, only for whole
// blocks; the edges are read-modify-written.
func TestBulkZero(t *testing.T) {
	const nblocks = 5000
	st := &bulkStore{Store: memstore.New(bs, nblocks), zeroed: map[uint64]bool{}}
	v := New(st, Options{})
	all := bytes.Repeat([]byte{0xaa}, bs*nblocks)
	if err := v.WriteAt(ctx, all, 0, false); err != nil {
		t.Fatal(err)
	}
	off, length := int64(bs+7), int64((nblocks-3)*bs)
	if err := v.Zero(ctx, off, length, false); err != nil {
		t.Fatal(err)
	}
	clear(all[off : off+length])
	got := make([]byte, len(all))
	if err := v.ReadAt(ctx, got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, all) {
		t.Fatal("disk differs from reference after bulk zero")
	}
	// Whole blocks 2 .. nblocks-3 went in bulk, 1000 per call.
	want := nblocks - 4
	if len(st.zeroed) != want || st.calls != (want+999)/1000 {
		t.Fatalf("bulk zeroed %d blocks in %d calls, want %d in %d", len(st.zeroed), st.calls, want, (want+999)/1000)
	}
	if st.zeroed[1] || st.zeroed[nblocks-2] {
		t.Fatal("a partial edge block went to the bulk call")
	}
}

// A bulk zero racing partial writes to the same blocks: afterwards each
// written byte range holds either its data or zeroes as a whole block
// order allows, and no write is half-applied across the zero.
func TestBulkZeroSerialisesWithPartialWrites(t *testing.T) {
	const nblocks = 64
	st := &bulkStore{Store: memstore.New(bs, nblocks), zeroed: map[uint64]bool{}}
	v := New(st, Options{})
	for round := 0; round < 20; round++ {
		if err := v.WriteAt(ctx, bytes.Repeat([]byte{1}, bs*nblocks), 0, false); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := v.Zero(ctx, 0, bs*nblocks, false); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			for n := 0; n < nblocks; n++ {
				if err := v.WriteAt(ctx, []byte{2, 2}, int64(n*bs+10), false); err != nil {
					t.Error(err)
				}
			}
		}()
		wg.Wait()
		// Per block: either zero-then-write (zeros + "22") or write-then-zero
		// (all zero). Old 1s surviving next to a zero would be a lost zero.
		buf := make([]byte, bs)
		for n := 0; n < nblocks; n++ {
			if err := v.ReadAt(ctx, buf, int64(n*bs)); err != nil {
				t.Fatal(err)
			}
			if bytes.IndexByte(buf, 1) >= 0 {
				t.Fatalf("round %d block %d: old data survived the zero", round, n)
			}
		}
	}
}

// partStore reads parts of blocks, counting them, and fails a read of
// a whole block that is asked for as a part (the volume must use
// ReadBlock for those).
type partStore struct {
	*memstore.Store
	parts, blocks atomic.Int64
}

func (p *partStore) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	p.blocks.Add(1)
	return p.Store.ReadBlock(ctx, n, buf)
}

func (p *partStore) ReadPart(ctx context.Context, n uint64, off int, b []byte) error {
	if err := blockstore.CheckPart(p, n, off, b); err != nil {
		return err
	}
	if len(b) == p.BlockSize() {
		return errors.New("a whole block read as a part")
	}
	p.parts.Add(1)
	buf := make([]byte, p.BlockSize())
	if err := p.Store.ReadBlock(ctx, n, buf); err != nil {
		return err
	}
	copy(b, buf[off:])
	return nil
}

// TestPartialReadsUseReadPart: a read inside one block is one ReadPart,
// a read spanning blocks is ReadParts for its partial ends and ReadBlocks
// for the whole blocks between, and writes still read whole blocks.
func TestPartialReadsUseReadPart(t *testing.T) {
	store := memstore.New(bs, 8)
	ps := &partStore{Store: store}
	v := New(ps, Options{})
	data := bytes.Repeat([]byte{7}, 8*bs)
	if err := v.WriteAt(ctx, data, 0, false); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 100)
	if err := v.ReadAt(ctx, p, bs+10); err != nil || !bytes.Equal(p, data[:100]) {
		t.Fatalf("read inside a block: %v", err)
	}
	if parts, blocks := ps.parts.Load(), ps.blocks.Load(); parts != 1 || blocks != 0 {
		t.Fatalf("read inside a block: %d part reads, %d block reads; want 1, 0", parts, blocks)
	}
	p = make([]byte, 3*bs)
	if err := v.ReadAt(ctx, p, bs/2); err != nil || !bytes.Equal(p, data[:3*bs]) {
		t.Fatalf("read across blocks: %v", err)
	}
	if parts, blocks := ps.parts.Load(), ps.blocks.Load(); parts != 3 || blocks != 2 {
		t.Fatalf("after a read across blocks: %d part reads, %d block reads; want 3, 2", parts, blocks)
	}
	if err := v.WriteAt(ctx, []byte{1, 2, 3}, 5, false); err != nil {
		t.Fatal(err)
	}
	if parts, blocks := ps.parts.Load(), ps.blocks.Load(); parts != 3 || blocks != 3 {
		t.Fatalf("after a partial write: %d part reads, %d block reads; want 3, 3 (read-modify-write reads the block)", parts, blocks)
	}
}

// partWriteStore also writes parts, counting them (partial zeroes apart),
// by an unguarded read-modify-write: racing writers of one block would
// lose updates unless the volume orders them.
type partWriteStore struct {
	*partStore
	writes, zeroes atomic.Int64
}

func (p *partWriteStore) WritePart(ctx context.Context, n uint64, off int, b []byte) error {
	if err := blockstore.CheckPart(p, n, off, b); err != nil {
		return err
	}
	if len(b) == p.BlockSize() {
		return errors.New("a whole block written as a part")
	}
	if blockstore.IsZero(b) {
		p.zeroes.Add(1)
	} else {
		p.writes.Add(1)
	}
	buf := make([]byte, p.BlockSize())
	if err := p.Store.ReadBlock(ctx, n, buf); err != nil {
		return err
	}
	runtime.Gosched() // widen the window a racing writer would need
	copy(buf[off:], b)
	return p.Store.WriteBlock(ctx, n, buf)
}
