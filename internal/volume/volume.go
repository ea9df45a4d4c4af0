// Package volume turns a block store into a byte-addressed disk: partial
// blocks are written as parts (blockstore.PartWriter: in place in a cache)
// or read-modify-written, zeroing and trimming whole blocks become
// block deletes, and requests spanning many blocks run in parallel. Every
// front end (NBD, FUSE, the nbdkit plugin) serves a Volume.
package volume

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Volume is safe for concurrent use.
type Volume struct {
	store     blockstore.Store
	parts     blockstore.PartReader // store, if it reads parts of blocks
	partW     blockstore.PartWriter // store, if it writes parts of blocks
	zeros     []byte                // a block of zeroes, for zeroing parts through partW
	blockSize int64
	size      int64
	readOnly  bool
	parallel  int

	// Writers of one block are serialised so that two partial writes (or a
	// partial and a whole one) to the same block never lose an update. A
	// fixed table of striped locks bounds memory whatever the disk size.
	locks [lockStripes]sync.Mutex
	bufs  sync.Pool
}

// lockStripes is a power of two larger than a few zeroing batches of
// consecutive blocks, so concurrent batches rarely share a stripe.
const lockStripes = 4096

// Options tune a Volume.
type Options struct {
	ReadOnly bool
	// Parallel bounds how many blocks of one request are in flight at once
	// (default 16).
	Parallel int
}

// New returns a volume over s.
func New(s blockstore.Store, opt Options) *Volume {
	if opt.Parallel <= 0 {
		opt.Parallel = 16
	}
	bs := s.BlockSize()
	v := &Volume{
		store:     s,
		blockSize: int64(bs),
		size:      int64(bs) * int64(s.NumBlocks()),
		readOnly:  opt.ReadOnly,
		parallel:  opt.Parallel,
	}
	// Reads of part of a block go to a PartReader as they are: from a
	// cache, 4 KiB of a 256 KiB block is then one 4 KiB copy, not a
	// whole-block copy into a scratch buffer and a second copy out.
	v.parts, _ = s.(blockstore.PartReader)
	// Writes of part of a block go to a PartWriter likewise: a cache hit
	// copies only the part into the cached block, instead of the whole
	// block being read out, changed and written back.
	v.partW, _ = s.(blockstore.PartWriter)
	if v.partW != nil && !opt.ReadOnly {
		v.zeros = make([]byte, bs)
	}
	v.bufs.New = func() any { b := make([]byte, bs); return &b }
	return v
}

func (v *Volume) Size() int64    { return v.size }
func (v *Volume) BlockSize() int { return int(v.blockSize) }
func (v *Volume) ReadOnly() bool { return v.readOnly }

func (v *Volume) checkRange(off, length int64) error {
	if off < 0 || length < 0 || off > v.size || length > v.size-off {
		return fmt.Errorf("range %d+%d outside the %d-byte disk: %w", off, length, v.size, syscall.EINVAL)
	}
	return nil
}

func (v *Volume) checkWritable() error {
	if v.readOnly {
		return blockstore.ErrReadOnly
	}
	return nil
}

// span is the part of one block that a request touches.
type span struct {
	block    uint64
	inBlock  int64 // offset inside the block
	inReq    int64 // offset inside the request
	length   int64
	complete bool // the whole block
}

// forEach calls fn for every block span of [off, off+length), up to
// v.parallel at a time, and returns the first error.
func (v *Volume) forEach(ctx context.Context, off, length int64, fn func(ctx context.Context, sp span) error) error {
	first := off / v.blockSize
	last := (off + length - 1) / v.blockSize
	if length == 0 {
		return nil
	}
	mk := func(b int64) span {
		start := max(off, b*v.blockSize)
		end := min(off+length, (b+1)*v.blockSize)
		return span{
			block:    uint64(b),
			inBlock:  start - b*v.blockSize,
			inReq:    start - off,
			length:   end - start,
			complete: end-start == v.blockSize,
		}
	}
	if first == last {
		return fn(ctx, mk(first))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.parallel)
	for b := first; b <= last; b++ {
		sp := mk(b)
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, sp) })
	}
	return g.Wait()
}

func (v *Volume) getBuf() *[]byte  { return v.bufs.Get().(*[]byte) }
func (v *Volume) putBuf(b *[]byte) { v.bufs.Put(b) }

// ReadAt fills p from the disk at off.
func (v *Volume) ReadAt(ctx context.Context, p []byte, off int64) error {
	if err := v.checkRange(off, int64(len(p))); err != nil {
		return err
	}
	return v.forEach(ctx, off, int64(len(p)), func(ctx context.Context, sp span) error {
		dst := p[sp.inReq : sp.inReq+sp.length]
		if sp.complete {
			return v.store.ReadBlock(ctx, sp.block, dst)
		}
		if v.parts != nil {
			return v.parts.ReadPart(ctx, sp.block, int(sp.inBlock), dst)
		}
		buf := v.getBuf()
		defer v.putBuf(buf)
		if err := v.store.ReadBlock(ctx, sp.block, *buf); err != nil {
			return err
		}
		copy(dst, (*buf)[sp.inBlock:])
		return nil
	})
}

// update writes src (nil: zeroes) as the span of one block, under the
// block's write lock: a whole block directly; a part through the store's
// PartWriter, or else by read-modify-write of the whole block.
func (v *Volume) update(ctx context.Context, sp span, src []byte) error {
	mu := &v.locks[sp.block%lockStripes]
	mu.Lock()
	defer mu.Unlock()
	if sp.complete {
		return v.store.WriteBlock(ctx, sp.block, src)
	}
	if v.partW != nil {
		if src == nil {
			src = v.zeros[:sp.length]
		}
		return v.partW.WritePart(ctx, sp.block, int(sp.inBlock), src)
	}
	buf := v.getBuf()
	defer v.putBuf(buf)
	if err := v.store.ReadBlock(ctx, sp.block, *buf); err != nil {
		return err
	}
	part := (*buf)[sp.inBlock : sp.inBlock+sp.length]
	if src == nil {
		clear(part)
	} else {
		copy(part, src)
	}
	return v.store.WriteBlock(ctx, sp.block, *buf)
}

// WriteAt writes p at off; with fua the data is durable on return.
func (v *Volume) WriteAt(ctx context.Context, p []byte, off int64, fua bool) error {
	if err := v.checkWritable(); err != nil {
		return err
	}
	if err := v.checkRange(off, int64(len(p))); err != nil {
		return err
	}
	err := v.forEach(ctx, off, int64(len(p)), func(ctx context.Context, sp span) error {
		return v.update(ctx, sp, p[sp.inReq:sp.inReq+sp.length])
	})
	if err == nil && fua {
		err = v.Flush(ctx)
	}
	return err
}

// Zero makes [off, off+length) read as zeroes. Whole blocks are deleted
// (s3backer never stores zero blocks) — in bulk when the store can — and
// partial ones read-modify-written. That is never slower than writing the
// zeroes, so a fast-zero request is always honoured; and since s3backer's
// format has no way to store a zero block, NoHole cannot allocate one: the
// range still reads as zeroes.
func (v *Volume) Zero(ctx context.Context, off, length int64, fua bool) error {
	if err := v.checkWritable(); err != nil {
		return err
	}
	if err := v.checkRange(off, length); err != nil {
		return err
	}
	err := v.zero(ctx, off, length)
	if err == nil && fua {
		err = v.Flush(ctx)
	}
	return err
}

func (v *Volume) zero(ctx context.Context, off, length int64) error {
	// Whole blocks inside the range: [first, end).
	first := (off + v.blockSize - 1) / v.blockSize
	end := (off + length) / v.blockSize
	bz, bulk := v.store.(blockstore.BulkZeroer)
	if !bulk || end-first < 2 {
		return v.zeroEach(ctx, off, length)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.parallel)
	// The partial edges, block by block.
	g.Go(func() error { return v.zeroEach(gctx, off, first*v.blockSize-off) })
	g.Go(func() error { return v.zeroEach(gctx, end*v.blockSize, off+length-end*v.blockSize) })
	for b := first; b < end && gctx.Err() == nil; b += zeroBatch {
		batch := make([]uint64, 0, min(zeroBatch, end-b))
		for n := b; n < min(b+zeroBatch, end); n++ {
			batch = append(batch, uint64(n))
		}
		g.Go(func() error { return v.zeroBatch(gctx, bz, batch) })
	}
	return g.Wait()
}

// zeroEach zeroes a range block by block (read-modify-write for parts).
func (v *Volume) zeroEach(ctx context.Context, off, length int64) error {
	return v.forEach(ctx, off, length, func(ctx context.Context, sp span) error {
		return v.update(ctx, sp, nil)
	})
}

// zeroBatch is one DeleteObjects worth of blocks in S3.
const zeroBatch = 1000

// zeroBatch zeroes consecutive blocks in one store call, holding their
// write locks (taken in stripe order, so batches cannot deadlock) so that
// no read-modify-write of one of them straddles the call.
func (v *Volume) zeroBatch(ctx context.Context, bz blockstore.BulkZeroer, blocks []uint64) error {
	stripes := make([]int, 0, len(blocks))
	for _, n := range blocks {
		stripes = append(stripes, int(n%lockStripes))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		v.locks[i].Lock()
	}
	defer func() {
		for _, i := range stripes {
			v.locks[i].Unlock()
		}
	}()
	return bz.ZeroBlocks(ctx, blocks)
}

// Flush makes every acknowledged write durable.
func (v *Volume) Flush(ctx context.Context) error {
	if v.readOnly {
		return nil
	}
	return v.store.Flush(ctx)
}

// Cache asks the store to fetch the blocks of a range ahead of reads; a
// store that cannot (no cache layer) makes it a no-op.
func (v *Volume) Cache(ctx context.Context, off, length int64) error {
	if err := v.checkRange(off, length); err != nil {
		return err
	}
	p, ok := v.store.(blockstore.Prefetcher)
	if !ok || length == 0 {
		return nil
	}
	first := off / v.blockSize
	last := (off + length - 1) / v.blockSize
	return p.Prefetch(ctx, uint64(first), uint64(last-first+1))
}

// Close closes the store (which flushes it).
func (v *Volume) Close() error { return v.store.Close() }
