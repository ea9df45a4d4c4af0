package ecprotect

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Presence answers from what was written while that is remembered (the
// store below may still show an older state), else asks the store below
// if it can tell, else says Unknown.
func (s *Store) Presence(ctx context.Context, n uint64) (blockstore.Presence, error) {
	if err := blockstore.CheckBlock(s, n, nil); err != nil {
		return blockstore.Unknown, err
	}
	s.mu.Lock()
	s.expireLocked(time.Now())
	e := s.entries[n]
	var k kind
	if e != nil {
		k = e.kind
	}
	s.mu.Unlock()
	switch {
	case e == nil:
	case k == zeroed:
		return blockstore.Absent, nil
	case k == written:
		return blockstore.Present, nil
	default: // being written, or a failed write: either state is possible
		return blockstore.Unknown, nil
	}
	if p, ok := s.lower.(blockstore.Prober); ok {
		return p.Presence(ctx, n)
	}
	return blockstore.Unknown, nil
}

// ErrNoSurvey is Survey's error when the store below cannot list blocks.
var ErrNoSurvey = fmt.Errorf("the store below the MD5 cache cannot list its blocks: %w", errors.ErrUnsupported)

// Survey lists the stored blocks: every remembered block that may hold
// data (a listing may not show a recent write yet), those the store below
// lists, and every block written with data while the survey runs. A block
// may be reported more than once, or be zero by the time it is reported:
// callers take a report as "may hold data", as s3backer does.
func (s *Store) Survey(ctx context.Context, fn func(n uint64)) error {
	lower, ok := s.lower.(blockstore.Surveyor)
	if !ok {
		return ErrNoSurvey
	}
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	// Writes with data from now on report their block, so none is
	// missed between this snapshot and the end of the listing.
	sv := &surveyor{fn: fn}
	s.surveys[id] = sv
	recent := make([]uint64, 0, len(s.entries))
	for n, e := range s.entries {
		if e.kind != zeroed {
			recent = append(recent, n)
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.surveys, id)
		s.mu.Unlock()
		// No report may come after Survey returns.
		sv.calls.Wait()
	}()
	for _, n := range recent {
		fn(n)
	}
	return lower.Survey(ctx, fn)
}

// surveyor is a running survey: its callback, and the calls of it that
// writes have committed to make (counted under Store.mu while the survey
// is registered, so Survey's final Wait sees them all).
type surveyor struct {
	fn    func(n uint64)
	calls sync.WaitGroup
}
