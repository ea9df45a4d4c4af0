package ecprotect

import (
	"context"
	"fmt"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// ReadBlock reads block n, checked against what was last written to it
// while that is remembered; see the package documentation.
func (s *Store) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	_, err := s.read(ctx, n, buf, func() (string, error) { return "", s.lower.ReadBlock(ctx, n, buf) })
	return err
}

// read is ReadBlock reading below with readLower, which fills buf and
// returns the block's tag if it has one.
func (s *Store) read(ctx context.Context, n uint64, buf []byte, readLower func() (string, error)) (string, error) {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return "", err
	}
	s.mu.Lock()
	for {
		now := time.Now()
		s.expireLocked(now)
		e := s.entries[n]
		if e == nil {
			s.mu.Unlock()
			return readLower()
		}
		switch e.kind {
		case writing:
			if _, err := s.wait(ctx, e.done, time.Time{}); err != nil {
				s.mu.Unlock()
				return "", fmt.Errorf("block %d: waiting for its write: %w", n, err)
			}
		case zeroed:
			s.mu.Unlock()
			clear(buf)
			s.st.hits.Add(1)
			return "", nil // not stored: no tag
		case unknown:
			// The failed write may still land: give it MinWriteDelay,
			// then forget it and read whatever is there.
			settled := e.at.Add(s.opt.MinWriteDelay)
			if !now.Before(settled) {
				s.forgetLocked(e)
				continue
			}
			if _, err := s.wait(ctx, nil, settled); err != nil {
				s.mu.Unlock()
				return "", fmt.Errorf("block %d: waiting for a failed write to settle: %w", n, err)
			}
		default: // written
			want := e.expect()
			s.mu.Unlock()
			return s.readChecked(ctx, n, buf, want, readLower)
		}
	}
}

// readChecked reads block n until it matches want, or what a write begun
// since expects, retrying stale reads with growing pauses.
func (s *Store) readChecked(ctx context.Context, n uint64, buf []byte, want expectation, readLower func() (string, error)) (string, error) {
	s.st.verified.Add(1)
	pause, paused := s.opt.InitialRetryPause, time.Duration(0)
	for {
		tag, err := readLower()
		if err != nil {
			return "", err
		}
		if s.matches(want, buf) || s.matchesCurrent(n, buf) {
			return tag, nil
		}
		s.st.stale.Add(1)
		if paused >= s.opt.MaxRetryPause {
			s.st.giveUps.Add(1)
			s.log.Error("stale read: giving up", "block", n, "retried", paused)
			return "", fmt.Errorf("block %d, after retrying for %v: %w", n, paused, ErrStale)
		}
		d := min(pause, s.opt.MaxRetryPause-paused)
		s.log.Info("stale read: retrying", "block", n, "pause", d)
		if err := s.sleep(ctx, d); err != nil {
			return "", fmt.Errorf("block %d: retrying a stale read: %w", n, err)
		}
		paused += d
		pause *= 2
	}
}

// matchesCurrent reports whether buf is what the write of block n in
// flight, or ended since the read began, stored: a read overlapping a
// write may return either version.
func (s *Store) matchesCurrent(n uint64, buf []byte) bool {
	s.mu.Lock()
	e := s.entries[n]
	var want expectation
	if e != nil {
		want = e.expect()
	}
	s.mu.Unlock()
	return e != nil && s.matches(want, buf)
}
