package cache

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// bulkParallel bounds the per-block zero writes of a bulk zero when the
// store below cannot zero in bulk.
const bulkParallel = 16

// WriteBlock stores data as block n in the cache, dirty; it is written
// back after the write delay, or before WriteBlock returns if the delay is
// 0 (or Sync). A zero block is a dirty block too; its write-back deletes.
func (s *Store) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	if err := blockstore.CheckBlock(s, n, data); err != nil {
		return err
	}
	if data != nil && blockstore.IsZero(data) {
		data = nil
	}
	var w *flushWait
	if s.sync {
		w = newFlushWait()
	}
	if err := s.write(ctx, n, data, w); err != nil {
		return err
	}
	return s.awaitUploads(ctx, w)
}

// awaitUploads waits for the uploads w was attached to (nil: none).
func (s *Store) awaitUploads(ctx context.Context, w *flushWait) error {
	if w == nil {
		return nil
	}
	s.mu.Lock()
	w.resolve(nil) // set up: every upload to wait for is attached
	pending := !w.closed
	s.mu.Unlock()
	if !pending {
		return w.err
	}
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return ErrClosed
	}
}

// write puts data (nil: zeroes) into block n's slot and makes it dirty;
// with w, w waits for its upload.
func (s *Store) write(ctx context.Context, n uint64, data []byte, w *flushWait) error {
	return s.update(ctx, n, false, w, func(e *entry, _ bool) (bool, error) {
		return data == nil, s.slots.Write(e.slot, n, data)
	})
}

// update changes block n's slot with put and makes the block dirty; with
// w, w waits for its upload. put runs holding the entry's dmu, stores the
// new contents in the slot and says whether they are now all zeroes;
// fresh says the entry is new (its slot holds nothing yet). A load of the
// block in progress is waited for. part says put changes only part of the
// block, so the rest must be current first: a block recovered from a cache
// file is verified, and put fetches a block not in the cache from below.
func (s *Store) update(ctx context.Context, n uint64, part bool, w *flushWait, put func(e *entry, fresh bool) (zero bool, err error)) error {
	for {
		s.mu.Lock()
		e, fresh, reserved, err := s.claimLocked(ctx, n, part)
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if !fresh {
			e.dmu.Lock()
		}
		if e.dead {
			// Its load failed (or a writer's slot write) before we got
			// dmu: start over.
			e.dmu.Unlock()
			s.mu.Lock()
			s.unreserveLocked(reserved)
			s.unpinLocked(e)
			s.mu.Unlock()
			continue
		}
		zero, err := put(e, fresh)
		s.mu.Lock()
		if err != nil {
			err = fmt.Errorf("block cache: storing block %d: %w", n, err)
			s.unreserveLocked(reserved)
			if e.state != stDirty && e.state != stUploading {
				// The slot's contents are lost; below still has the
				// last acknowledged write.
				if e.state == stClean {
					s.lruFor(e).remove(e)
				}
				// A loader of the entry sees it is dead; its waiters
				// read again.
				s.removeLocked(e)
			}
			// A dirty slot keeps whatever the slot store made of it: a
			// persistent Slots must not lose the old data on failure.
		} else {
			s.commitWriteLocked(e, zero, reserved, w)
		}
		s.unpinLocked(e)
		s.mu.Unlock()
		e.dmu.Unlock()
		return err
	}
}

// claimLocked finds or creates block n's entry for a write, waiting for a
// slot, the dirty budget, a bulk zero or a load of n to end — and, for a
// part write, for a recovered copy of n to be verified.
// The entry comes back pinned; a fresh one (stNew) with dmu locked.
// reserved says a unit of dirty budget was taken for it.
func (s *Store) claimLocked(ctx context.Context, n uint64, part bool) (e *entry, fresh, reserved bool, err error) {
	for {
		if s.closed {
			return nil, false, false, ErrClosed
		}
		if op := s.zeroing[n]; op != nil {
			if err := s.waitLocked(ctx, op.done); err != nil {
				return nil, false, false, err
			}
			continue
		}
		e = s.entries[n]
		switch {
		case e != nil && e.state == stLoading:
			// The loader owns the slot (newLoadLocked); and a part
			// write needs the rest of the block anyway.
			e.pins++
			err := s.waitLocked(ctx, e.loaded)
			s.unpinLocked(e)
			if err != nil {
				return nil, false, false, err
			}
			continue
		case part && e != nil && e.state == stClean && e.verify:
			s.verifyLocked(ctx, e)
			continue
		}
		becomesDirty := e == nil || e.state == stClean
		if becomesDirty && s.maxDirty > 0 && s.dirty >= s.maxDirty {
			if err := s.waitSpaceLocked(ctx); err != nil {
				return nil, false, false, err
			}
			continue
		}
		if e == nil {
			slot, ok := s.allocSlotLocked(false)
			if !ok {
				if err := s.waitSpaceLocked(ctx); err != nil {
					return nil, false, false, err
				}
				continue
			}
			e = &entry{n: n, slot: slot, state: stNew, hidx: -1}
			e.dmu.Lock() // a fresh mutex: never blocks
			s.entries[n] = e
			fresh = true
			s.st.writeMisses++
		} else {
			s.st.writeHits++
		}
		e.pins++
		if becomesDirty {
			s.dirty++
		}
		return e, fresh, becomesDirty, nil
	}
}

func (s *Store) unreserveLocked(reserved bool) {
	if reserved {
		s.dirty--
		s.spaceFreedLocked()
	}
}

// commitWriteLocked records a write whose data is now in e's slot (dmu
// held): a new sequence number and the dirty state.
func (s *Store) commitWriteLocked(e *entry, zero, reserved bool, w *flushWait) {
	s.seq++
	e.wseq = s.seq
	e.zero = zero
	e.verify = false // a whole new block (or a part of a verified one)
	switch e.state {
	case stNew, stLoading, stClean:
		if e.state == stClean {
			s.lruFor(e).remove(e)
		}
		if !reserved {
			// It was dirty when claimed, and has been written back since.
			s.dirty++
		}
		e.state = stDirty
		e.at = s.now() + s.delay
		if w != nil {
			s.attachLocked(e, w)
		} else {
			s.enqueueLocked(e)
		}
		return
	}
	// Dirty (it keeps its place, so rewrites make one upload) or uploading
	// (the worker queues it again when it sees the newer wseq).
	s.unreserveLocked(reserved)
	if w != nil {
		s.attachLocked(e, w)
	}
}

// ZeroBlocks makes the blocks zero. Blocks in the cache get zero writes
// through it (dirty, deleted on write-back); the others — and clean ones,
// dropped from the cache — are zeroed below before it returns, in bulk if
// the store below can. See the package documentation for the ordering.
func (s *Store) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	for _, n := range blocks {
		if err := blockstore.CheckBlock(s, n, nil); err != nil {
			return fmt.Errorf("zeroing %d blocks: %w", len(blocks), err)
		}
	}
	op := &zeroOp{done: make(chan struct{})}
	var through, cached []uint64
	inval, _ := s.slots.(Invalidator)
	var evicted []*entry // pinned until their slots' entries are invalidated
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		var busy *zeroOp
		for _, n := range blocks {
			if busy = s.zeroing[n]; busy != nil {
				break
			}
		}
		if busy == nil {
			break
		}
		if err := s.waitLocked(ctx, busy.done); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	for _, n := range blocks {
		if s.zeroing[n] == op {
			continue // listed twice
		}
		e := s.entries[n]
		if e != nil && e.state == stClean && e.pins == 0 {
			if inval != nil {
				e.pins++ // the slot stays ours until Invalidate
				evicted = append(evicted, e)
			}
			s.evictLocked(e)
			e = nil
		}
		if e == nil {
			s.zeroing[n] = op
			through = append(through, n)
		} else {
			cached = append(cached, n)
		}
	}
	s.mu.Unlock()

	// A persistent slot store must forget the evicted blocks before they
	// change below, or a restart could bring their old data back.
	var err error
	for _, e := range evicted {
		if ierr := inval.Invalidate(e.slot); ierr != nil && err == nil {
			err = fmt.Errorf("block cache: forgetting block %d: %w", e.n, ierr)
		}
	}
	if len(evicted) > 0 {
		s.mu.Lock()
		for _, e := range evicted {
			s.unpinLocked(e)
		}
		s.mu.Unlock()
	}
	if err == nil {
		err = s.zeroBelow(ctx, through)
	}
	s.mu.Lock()
	for _, n := range through {
		delete(s.zeroing, n)
	}
	close(op.done)
	s.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("zeroing %d blocks: %w", len(through), err)
	}

	var w *flushWait
	if s.sync {
		w = newFlushWait()
	}
	for _, n := range cached {
		if werr := s.write(ctx, n, nil, w); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return errors.Join(err, s.awaitUploads(ctx, w))
}

// zeroBelow zeroes blocks in the store below.
func (s *Store) zeroBelow(ctx context.Context, blocks []uint64) error {
	if len(blocks) == 0 {
		return nil
	}
	if s.bulk != nil {
		return s.bulk.ZeroBlocks(ctx, blocks)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(bulkParallel)
	for _, n := range blocks {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := s.lower.WriteBlock(gctx, n, nil); err != nil {
				return fmt.Errorf("block %d: %w", n, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
