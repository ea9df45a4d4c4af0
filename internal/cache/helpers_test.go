package cache

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
)

var (
	bg          = context.Background()
	errInjected = errors.New("injected failure")
)

// lower is the store under the cache in tests: a memstore that counts
// calls per block and lets a test decide, through hooks, when each call
// does its work and what it returns. It is deliberately none of Prober,
// Surveyor, BulkZeroer; fullLower is all three.
type lower struct {
	mem *memstore.Store

	reads, writes, flushes atomic.Int64
	// readHook and writeHook, if set, run each ReadBlock and WriteBlock:
	// they call do for the real work, when they like, and return what
	// the call returns.
	readHook  func(ctx context.Context, n uint64, do func() error) error
	writeHook func(ctx context.Context, n uint64, data []byte, do func() error) error
	bulkErr   error

	mu        sync.Mutex
	readsOf   map[uint64]int
	writesOf  map[uint64]int
	bulkCalls [][]uint64
}

func newLower(bs int, n uint64) *lower {
	return &lower{mem: memstore.New(bs, n), readsOf: map[uint64]int{}, writesOf: map[uint64]int{}}
}

func (l *lower) BlockSize() int                  { return l.mem.BlockSize() }
func (l *lower) NumBlocks() uint64               { return l.mem.NumBlocks() }
func (l *lower) Flush(ctx context.Context) error { l.flushes.Add(1); return nil }
func (l *lower) Close() error                    { return nil }

func (l *lower) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	l.reads.Add(1)
	l.mu.Lock()
	l.readsOf[n]++
	l.mu.Unlock()
	do := func() error { return l.mem.ReadBlock(ctx, n, buf) }
	if l.readHook != nil {
		return l.readHook(ctx, n, do)
	}
	return do()
}

func (l *lower) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	l.writes.Add(1)
	l.mu.Lock()
	l.writesOf[n]++
	l.mu.Unlock()
	do := func() error { return l.mem.WriteBlock(ctx, n, data) }
	if l.writeHook != nil {
		return l.writeHook(ctx, n, data, do)
	}
	return do()
}

func (l *lower) readsOfBlock(n uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.readsOf[n]
}

func (l *lower) writesOfBlock(n uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writesOf[n]
}

// stored returns block n as the memstore holds it.
func (l *lower) stored(n uint64) []byte {
	buf := make([]byte, l.BlockSize())
	if err := l.mem.ReadBlock(bg, n, buf); err != nil {
		panic(err)
	}
	return buf
}

// fullLower adds Presence, Survey and bulk zeroing.
type fullLower struct{ *lower }

func (f fullLower) Presence(ctx context.Context, n uint64) (blockstore.Presence, error) {
	return f.mem.Presence(ctx, n)
}

func (f fullLower) Survey(ctx context.Context, fn func(uint64)) error {
	for n := range f.NumBlocks() {
		if p, _ := f.mem.Presence(ctx, n); p == blockstore.Present {
			fn(n)
		}
	}
	return ctx.Err()
}

func (f fullLower) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	f.mu.Lock()
	f.bulkCalls = append(f.bulkCalls, slices.Clone(blocks))
	f.mu.Unlock()
	for _, n := range blocks {
		if err := f.mem.WriteBlock(ctx, n, nil); err != nil {
			return err
		}
	}
	return f.bulkErr
}

var (
	_ blockstore.Prober     = fullLower{}
	_ blockstore.Surveyor   = fullLower{}
	_ blockstore.BulkZeroer = fullLower{}
)

// pattern fills a block with bytes derived from seed, never all zero.
func pattern(size int, seed int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(seed) ^ byte(i*7) ^ byte(i>>8) ^ byte(seed>>8)
	}
	b[0] = byte(seed) | 1
	return b
}

func newCache(t testing.TB, l blockstore.Store, opt Options) *Store {
	t.Helper()
	c, err := New(l, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func mustRead(t testing.TB, s blockstore.Store, n uint64) []byte {
	t.Helper()
	buf := bytes.Repeat([]byte{0xee}, s.BlockSize())
	if err := s.ReadBlock(bg, n, buf); err != nil {
		t.Fatalf("read block %d: %v", n, err)
	}
	return buf
}

func mustWrite(t testing.TB, s blockstore.Store, n uint64, data []byte) {
	t.Helper()
	if err := s.WriteBlock(bg, n, data); err != nil {
		t.Fatalf("write block %d: %v", n, err)
	}
}

func mustFlush(t testing.TB, s blockstore.Store) {
	t.Helper()
	if err := s.Flush(bg); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// gate is a hook helper: calls for the blocks it holds wait until
// released; entered reports each arrival.
type gate struct {
	mu      sync.Mutex
	held    map[uint64]chan struct{}
	entered chan uint64
}

func newGate(blocks ...uint64) *gate {
	g := &gate{held: map[uint64]chan struct{}{}, entered: make(chan uint64, 100)}
	for _, n := range blocks {
		g.held[n] = make(chan struct{})
	}
	return g
}

// pass blocks while n is held.
func (g *gate) pass(n uint64) {
	g.mu.Lock()
	ch := g.held[n]
	g.mu.Unlock()
	if ch == nil {
		return
	}
	g.entered <- n
	<-ch
}

func (g *gate) release(n uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch := g.held[n]; ch != nil {
		close(ch)
		delete(g.held, n)
	}
}
