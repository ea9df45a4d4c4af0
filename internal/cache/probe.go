package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Presence answers for a block in the cache from its data (zeroes:
// Absent, else Present: the last acknowledged write decides) and asks the
// store below for others, or says Unknown if it cannot tell.
func (s *Store) Presence(ctx context.Context, n uint64) (blockstore.Presence, error) {
	if err := blockstore.CheckBlock(s, n, nil); err != nil {
		return blockstore.Unknown, err
	}
	s.mu.Lock()
	if e := s.entries[n]; e != nil {
		switch e.state {
		case stClean, stDirty, stUploading:
			zero := e.zero
			s.mu.Unlock()
			if zero {
				return blockstore.Absent, nil
			}
			return blockstore.Present, nil
		}
	}
	s.mu.Unlock()
	if s.prober != nil {
		return s.prober.Presence(ctx, n)
	}
	return blockstore.Unknown, nil
}

// ErrNoSurvey is Survey's error when the store below cannot list blocks.
var ErrNoSurvey = fmt.Errorf("the store below the block cache cannot list its blocks: %w", errors.ErrUnsupported)

// Survey lists the stored blocks as seen through the cache: the listing
// below, without blocks the cache holds as zeroes when they are reported,
// then every dirty block holding data. See the package documentation.
func (s *Store) Survey(ctx context.Context, fn func(n uint64)) error {
	if s.surveyor == nil {
		return ErrNoSurvey
	}
	err := s.surveyor.Survey(ctx, func(n uint64) {
		s.mu.Lock()
		e := s.entries[n]
		zero := e != nil && e.zero && (e.state == stClean || e.state == stDirty || e.state == stUploading)
		s.mu.Unlock()
		if !zero {
			fn(n)
		}
	})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	var dirty []uint64
	for n, e := range s.entries {
		if (e.state == stDirty || e.state == stUploading) && !e.zero {
			dirty = append(dirty, n)
		}
	}
	s.mu.Unlock()
	for _, n := range dirty {
		fn(n)
	}
	return nil
}
