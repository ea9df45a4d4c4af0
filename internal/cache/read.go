package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// ReadBlock serves block n from the cache, or reads it from below into the
// cache; concurrent readers of a missing block share one read below.
func (s *Store) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return err
	}
	return s.read(ctx, n, 0, buf)
}

// ReadPart fills p with bytes [off, off+len(p)) of block n. A hit copies
// only those bytes (s3backer's read_block_part); a miss reads the whole
// block into the cache, as ReadBlock does.
func (s *Store) ReadPart(ctx context.Context, n uint64, off int, p []byte) error {
	if err := blockstore.CheckBlock(s, n, nil); err != nil {
		return err
	}
	if off < 0 || off > s.bs || len(p) > s.bs-off {
		return fmt.Errorf("block %d: %d bytes at %d of a %d-byte block: %w", n, len(p), off, s.bs, syscall.EINVAL)
	}
	return s.read(ctx, n, off, p)
}

// read fills p from block n at off.
func (s *Store) read(ctx context.Context, n uint64, off int, p []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	run := s.noteReadLocked(n)
	for {
		if op := s.zeroing[n]; op != nil {
			if err := s.waitLocked(ctx, op.done); err != nil {
				s.mu.Unlock()
				return err
			}
			continue
		}
		e := s.entries[n]
		if e == nil {
			break
		}
		if e.state == stLoading {
			// Someone is reading it below: wait for that read.
			if e.spec {
				s.growReadAheadLocked(run)
			}
			e.pins++
			err := s.waitLocked(ctx, e.loaded)
			s.unpinLocked(e)
			if err != nil {
				s.mu.Unlock()
				return err
			}
			if e.dead {
				// The load failed. If only because its reader gave up,
				// or the data could not be kept (loadErr nil), try
				// again (as the reader, this time).
				if (e.loadErr == nil || isContextErr(e.loadErr)) && ctx.Err() == nil {
					continue
				}
				s.mu.Unlock()
				return cmp.Or(e.loadErr, ctx.Err())
			}
			continue // now clean, or dirty if written meanwhile
		}
		if e.state == stClean && e.verify {
			// Recovered from a cache file: check it below first (as
			// a load, which other readers wait for), then serve it.
			s.verifyLocked(ctx, e)
			continue
		}
		// A hit: clean, dirty, uploading, or new (wait for its writer).
		s.st.readHits++
		if e.state == stClean {
			e.at = s.now()
			s.lruFor(e).moveToFront(e)
		}
		e.spec = false
		e.pins++
		s.mu.Unlock()
		e.dmu.RLock()
		dead := e.dead
		var err error
		if !dead {
			err = s.slots.Read(e.slot, off, p)
		}
		e.dmu.RUnlock()
		s.mu.Lock()
		s.unpinLocked(e)
		if dead { // its writer failed: start over
			continue
		}
		s.mu.Unlock()
		return err
	}
	s.st.readMisses++
	slot, ok := s.allocSlotLocked(false)
	var e *entry
	if ok {
		e = s.newLoadLocked(n, slot, false)
	}
	s.mu.Unlock()
	if e == nil {
		// No slot (nothing evictable): read without caching. Nothing is
		// pending below for n (not cached, not zeroing), so below is
		// current.
		buf := p
		if len(p) != s.bs {
			b := s.bufs.Get().(*[]byte)
			defer s.bufs.Put(b)
			buf = *b
		}
		_, err := s.readBelow(ctx, n, buf)
		if err == nil && len(p) != s.bs {
			copy(p, buf[off:])
		}
		return err
	}
	buf, done := s.loadBuffer(e, p)
	defer done()
	tag, err := s.readBelow(ctx, n, buf)
	if err == nil && len(p) > 0 && &buf[0] != &p[0] {
		// Copy out while the load still holds the slot (dmu): once
		// it ends, writers may change it.
		copy(p, buf[off:])
	}
	s.finishLoad(e, buf, tag, err)
	return err
}

// loadBuffer returns where a load of e reads the block: the slot's own
// memory when the slot store lends it (no copy into the slot after),
// else p when it is a whole block, else a pooled buffer; done gives a
// pooled buffer back.
func (s *Store) loadBuffer(e *entry, p []byte) (buf []byte, done func()) {
	if d, ok := s.slots.(directSlots); ok {
		return d.buffer(e.slot), func() {}
	}
	if len(p) == s.bs {
		return p, func() {}
	}
	b := s.bufs.Get().(*[]byte)
	return *b, func() { s.bufs.Put(b) }
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// newLoadLocked creates a loading entry for n in slot, pinned by its
// loader, which holds its dmu until finishLoad: the slot is the loader's
// alone meanwhile (it may read from below straight into the slot's
// memory), so a writer of the block waits for the load to end; readers
// wait for loaded.
func (s *Store) newLoadLocked(n uint64, slot int, spec bool) *entry {
	e := &entry{n: n, slot: slot, state: stLoading, hidx: -1, pins: 1, loaded: make(chan struct{}), spec: spec}
	e.dmu.Lock() // a fresh mutex: never blocks
	s.entries[n] = e
	return e
}

// finishLoad ends a load (dmu held, released on return): the data, read
// into buf (the slot's own memory if the slot store lends it), becomes
// the clean contents, or the entry is dropped if the read failed.
func (s *Store) finishLoad(e *entry, buf []byte, tag string, err error) {
	defer e.dmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Writers wait for the load, so the entry is still loading.
	if e.state == stLoading && !e.dead && err == nil {
		zero := blockstore.IsZero(buf)
		s.mu.Unlock()
		var ferr error
		if d, ok := s.slots.(directSlots); ok {
			d.filled(e.slot, zero)
		} else {
			data := buf
			if zero {
				data = nil
			}
			ferr = s.slots.Fill(e.slot, e.n, data, tag)
		}
		s.mu.Lock()
		if ferr == nil {
			e.zero = zero
			e.state = stClean
			e.at = s.now()
			s.lruFor(e).pushFront(e)
			if s.timeout > 0 {
				s.scheduleLocked(e.at + s.timeout)
			}
		} else {
			// The read worked, only the cache could not keep it:
			// whoever waited reads again (loadErr stays nil).
			s.log.Error("block cache: cannot store a block read", "block", e.n, "err", ferr)
		}
	}
	if e.state == stLoading && !e.dead { // failed
		e.loadErr = err
		s.removeLocked(e)
	}
	close(e.loaded)
	s.unpinLocked(e)
}

// Prefetch queues blocks [first, first+count) to be read into the cache by
// the workers and returns at once (NBD_CMD_CACHE is advisory). At most
// Size blocks are queued at a time; the excess of a request is dropped.
// Blocks already cached are skipped; loads use free or evictable slots
// only, after write-back and read-ahead.
func (s *Store) Prefetch(ctx context.Context, first, count uint64) error {
	if count == 0 {
		return nil
	}
	if first >= s.nblocks || count > s.nblocks-first {
		return fmt.Errorf("prefetch of blocks %d+%d beyond the disk (%d blocks): %w", first, count, s.nblocks, syscall.EINVAL)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	count = min(count, uint64(s.size)-s.pfN)
	if count == 0 {
		return nil
	}
	s.pfq = append(s.pfq, blockRange{first, count})
	s.pfN += count
	s.kickLocked()
	return nil
}

// prefetchLocked starts loading the next queued prefetch block, if a slot
// can be had without waiting.
func (s *Store) prefetchLocked() *entry {
	for len(s.pfq) > 0 {
		n := s.pfq[0].first
		if s.entries[n] == nil && s.zeroing[n] == nil {
			slot, ok := s.allocSlotLocked(true)
			if !ok {
				return nil
			}
			s.popPrefetchLocked()
			s.st.prefetches++
			return s.newLoadLocked(n, slot, true)
		}
		s.popPrefetchLocked()
	}
	return nil
}

func (s *Store) popPrefetchLocked() {
	r := &s.pfq[0]
	r.first++
	r.count--
	s.pfN--
	if r.count == 0 {
		s.pfq[0] = blockRange{}
		s.pfq = s.pfq[1:]
		if len(s.pfq) == 0 {
			s.pfq = nil
		}
	}
}

// load runs a read-ahead or prefetch load on a worker, into the slot's
// memory if the slot store lends it, else into the worker's buffer.
func (s *Store) load(e *entry, buf []byte) {
	if d, ok := s.slots.(directSlots); ok {
		buf = d.buffer(e.slot)
	}
	tag, err := s.readBelow(s.ctx, e.n, buf)
	if err != nil && s.ctx.Err() == nil {
		s.log.Debug("block cache: read-ahead failed", "block", e.n, "err", err)
	}
	s.finishLoad(e, buf, tag, err)
}
