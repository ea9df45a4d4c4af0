package zero

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
)

// lower is a memstore that counts calls and is deliberately not a Prober,
// so every Presence answer in these tests comes from the zero layer.
type lower struct {
	mem *memstore.Store

	reads, writes atomic.Int64
	// readHook and writeHook, if set, run each ReadBlock and WriteBlock:
	// they decide when to do the real work (calling do) and what to return.
	readHook  func(ctx context.Context, n uint64, do func() error) error
	writeHook func(ctx context.Context, n uint64, data []byte, do func() error) error
	// bulkErr is what ZeroBlocks returns after zeroing.
	bulkErr error
	// survey, if set, replaces the default listing of stored blocks.
	survey func(ctx context.Context, fn func(uint64)) error

	mu        sync.Mutex
	bulkCalls [][]uint64 // blocks of each ZeroBlocks call
}

func newLower(blockSize int, numBlocks uint64) *lower {
	return &lower{mem: memstore.New(blockSize, numBlocks)}
}

func (l *lower) BlockSize() int                  { return l.mem.BlockSize() }
func (l *lower) NumBlocks() uint64               { return l.mem.NumBlocks() }
func (l *lower) Flush(ctx context.Context) error { return l.mem.Flush(ctx) }
func (l *lower) Close() error                    { return l.mem.Close() }

func (l *lower) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	l.reads.Add(1)
	load := func() error { return l.mem.ReadBlock(ctx, n, buf) }
	if l.readHook != nil {
		return l.readHook(ctx, n, load)
	}
	return load()
}

func (l *lower) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	l.writes.Add(1)
	store := func() error { return l.mem.WriteBlock(ctx, n, data) }
	if l.writeHook != nil {
		return l.writeHook(ctx, n, data, store)
	}
	return store()
}

func (l *lower) zeroBlocks(ctx context.Context, blocks []uint64) error {
	l.mu.Lock()
	l.bulkCalls = append(l.bulkCalls, slices.Clone(blocks))
	l.mu.Unlock()
	for _, n := range blocks {
		if err := l.mem.WriteBlock(ctx, n, nil); err != nil {
			return err
		}
	}
	return l.bulkErr
}

func (l *lower) listStored(ctx context.Context, fn func(uint64)) error {
	if l.survey != nil {
		return l.survey(ctx, fn)
	}
	for _, n := range l.stored() {
		fn(n)
	}
	return ctx.Err()
}

// stored lists the blocks the memstore holds now.
func (l *lower) stored() []uint64 {
	var out []uint64
	for n := range l.NumBlocks() {
		// memstore's Presence fails only for blocks out of range.
		if p, _ := l.mem.Presence(context.Background(), n); p == blockstore.Present {
			out = append(out, n)
		}
	}
	return out
}

// The interfaces a store below implements are static, so each combination
// is its own type.
type (
	bulkLower   struct{ *lower }
	surveyLower struct{ *lower }
	bothLower   struct{ *lower }
)

func (b bulkLower) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	return b.zeroBlocks(ctx, blocks)
}
func (s surveyLower) Survey(ctx context.Context, fn func(uint64)) error {
	return s.listStored(ctx, fn)
}
func (b bothLower) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	return b.zeroBlocks(ctx, blocks)
}
func (b bothLower) Survey(ctx context.Context, fn func(uint64)) error {
	return b.listStored(ctx, fn)
}

var (
	_ blockstore.BulkZeroer = bulkLower{}
	_ blockstore.Surveyor   = surveyLower{}
	_ blockstore.BulkZeroer = bothLower{}
	_ blockstore.Surveyor   = bothLower{}
)
