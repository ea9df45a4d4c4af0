package ecprotect

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// bulkParallel bounds the per-block writes of a bulk zero.
const bulkParallel = 16

// WriteBlock writes block n below once MinWriteDelay has passed since its
// last write ended and the table has room for it, and remembers what was
// written.
func (s *Store) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	_, err := s.write(ctx, n, data, func() (string, error) { return "", s.lower.WriteBlock(ctx, n, data) })
	return err
}

// write is WriteBlock writing below with writeLower, which returns the
// block's new tag if it has one.
func (s *Store) write(ctx context.Context, n uint64, data []byte, writeLower func() (string, error)) (string, error) {
	if err := blockstore.CheckBlock(s, n, data); err != nil {
		return "", err
	}
	zero := data == nil || blockstore.IsZero(data)
	var sum uint64
	if !zero {
		sum = s.sum(data)
	}
	e, report, err := s.acquire(ctx, n, zero, sum)
	if err != nil {
		return "", fmt.Errorf("block %d: %w", n, err)
	}
	// A listing in progress may not show this block yet: report it.
	// Outside s.mu: the callback may take locks of the layers above.
	for _, sv := range report {
		sv.fn(n)
		sv.calls.Done()
	}
	tag, err := writeLower()
	s.mu.Lock()
	s.endLocked(e, err)
	s.mu.Unlock()
	return tag, err
}

// acquire waits until block n may be written and marks it as being
// written (with the data described by zero and sum). For data, it also
// returns the surveys running, which the caller must report the block to
// (and then call calls.Done).
func (s *Store) acquire(ctx context.Context, n uint64, zero bool, sum uint64) (*entry, []*surveyor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		now := time.Now()
		e, ok, ch, until := s.tryAcquireLocked(n, now, zero, sum)
		if ok {
			var report []*surveyor
			if !zero {
				for _, sv := range s.surveys {
					sv.calls.Add(1)
					report = append(report, sv)
				}
			}
			return e, report, nil
		}
		if e == nil && s.opt.Time == 0 && !s.warned {
			// New checks the table covers the disk then: not reached
			// unless that check is bypassed.
			s.warned = true
			s.log.Error("MD5 cache is full and its entries never expire (--md5CacheTime=0): writes wait forever")
		}
		d, err := s.wait(ctx, ch, until)
		if e == nil {
			s.st.fullWait.Add(int64(d))
		} else {
			s.st.writeWait.Add(int64(d))
		}
		if err != nil {
			if e == nil {
				return nil, nil, fmt.Errorf("waiting for room in the MD5 cache: %w", err)
			}
			return nil, nil, fmt.Errorf("waiting for the minimum write delay: %w", err)
		}
	}
}

// tryAcquireLocked marks block n as being written if it may be written
// now. Else it returns what to wait for: the block's entry (nil if the
// table is full) and a channel or a time.
func (s *Store) tryAcquireLocked(n uint64, now time.Time, zero bool, sum uint64) (e *entry, ok bool, ch <-chan struct{}, until time.Time) {
	s.expireLocked(now)
	e = s.entries[n]
	switch {
	case e == nil && len(s.entries) >= s.opt.Size:
		// Full: wait for the oldest ended write to expire, or for a
		// write to end if none has (every entry is being written).
		if f := s.ended.front; f != nil && s.opt.Time > 0 {
			until = f.at.Add(s.opt.Time)
		}
		return nil, false, s.space, until
	case e == nil:
		e = &entry{n: n}
		s.entries[n] = e
	case e.kind == writing:
		// The volume serialises writes of one block, so only a bulk zero
		// racing a write gets here: wait for the other write to end.
		return e, false, e.done, time.Time{}
	case now.Before(e.at.Add(s.opt.MinWriteDelay)):
		return e, false, nil, e.at.Add(s.opt.MinWriteDelay)
	default:
		s.ended.remove(e)
	}
	e.kind, e.zero, e.sum, e.done = writing, zero, sum, make(chan struct{})
	return e, true, nil, time.Time{}
}

// endLocked records the outcome of a write of e.
func (s *Store) endLocked(e *entry, err error) {
	switch {
	case err != nil:
		e.kind = unknown
	case e.zero:
		e.kind = zeroed
	default:
		e.kind = written
	}
	e.at = time.Now()
	s.ended.pushBack(e)
	close(e.done)
	// A full table with every entry being written has nothing to
	// expire: its waiters need this wake-up to see this write's time.
	s.wakeLocked()
}

// ZeroBlocks zeroes blocks: those that may be written now in one bulk
// call below (if the store below can), the others (written too recently,
// or no room in the table) one by one as they may be. Nothing is held
// while waiting, so concurrent bulk zeroes cannot deadlock.
func (s *Store) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	for _, n := range blocks {
		if err := blockstore.CheckBlock(s, n, nil); err != nil {
			return fmt.Errorf("zeroing %d blocks: %w", len(blocks), err)
		}
	}
	later := blocks
	if bz, ok := s.lower.(blockstore.BulkZeroer); ok {
		now, ready := make([]*entry, 0, len(blocks)), make([]uint64, 0, len(blocks))
		later = nil
		s.mu.Lock()
		t := time.Now()
		for _, n := range blocks {
			if e, ok, _, _ := s.tryAcquireLocked(n, t, true, 0); ok {
				now, ready = append(now, e), append(ready, n)
			} else {
				later = append(later, n)
			}
		}
		s.mu.Unlock()
		if len(ready) > 0 {
			err := bz.ZeroBlocks(ctx, ready)
			s.mu.Lock()
			for _, e := range now {
				s.endLocked(e, err)
			}
			s.mu.Unlock()
			if err != nil {
				return fmt.Errorf("zeroing %d blocks: %w", len(ready), err)
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(bulkParallel)
	launched := 0
	for _, n := range later {
		if gctx.Err() != nil {
			break
		}
		launched++
		g.Go(func() error { return s.WriteBlock(gctx, n, nil) })
	}
	werr := g.Wait()
	if werr == nil && launched < len(later) {
		werr = ctx.Err() // stopped early with no write failing: canceled
	}
	if werr != nil {
		return fmt.Errorf("zeroing %d blocks: %w", len(later), werr)
	}
	return nil
}
