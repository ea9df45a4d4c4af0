package cache

import (
	"bytes"
	"context"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// readBelow reads block n from the store below, with its tag if the store
// below has tags.
func (s *Store) readBelow(ctx context.Context, n uint64, buf []byte) (string, error) {
	if s.tagger != nil {
		return s.tagger.ReadBlockTag(ctx, n, buf)
	}
	return "", s.lower.ReadBlock(ctx, n, buf)
}

// writeBelow writes block n to the store below, returning its new tag if
// the store below has tags.
func (s *Store) writeBelow(ctx context.Context, n uint64, data []byte) (string, error) {
	if s.tagger != nil {
		return s.tagger.WriteBlockTag(ctx, n, data)
	}
	return "", s.lower.WriteBlock(ctx, n, data)
}

// verifyLocked checks a clean block recovered from a persistent Slots
// against the store below before its first use (s3backer's CLEAN2 state).
// The entry is a load meanwhile: readers and writers wait for it. mu is held on entry and on return,
// released in between.
func (s *Store) verifyLocked(ctx context.Context, e *entry) {
	s.lruFor(e).remove(e)
	e.state = stLoading
	e.loaded = make(chan struct{})
	e.pins++
	zero, tag := e.zero, e.tag
	s.mu.Unlock()
	defer s.mu.Lock()

	b := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(b)
	buf := *b
	changed, tag, err := s.checkBelow(ctx, e, zero, tag, buf)

	e.dmu.Lock()
	defer e.dmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.state == stLoading && !e.dead {
		if err == nil && changed {
			zero = blockstore.IsZero(buf)
			data := buf
			if zero {
				data = nil
			}
			s.mu.Unlock()
			ferr := s.slots.Fill(e.slot, e.n, data, tag)
			s.mu.Lock()
			if ferr != nil {
				// The data below is fine, only the cache cannot keep
				// it: whoever waits reads again (loadErr stays nil).
				s.log.Error("block cache: cannot store a block read", "block", e.n, "err", ferr)
				s.removeLocked(e)
			} else {
				e.zero = zero
				s.st.mismatch++
			}
		} else if err == nil {
			s.st.verified++
		}
		switch {
		case err != nil:
			e.loadErr = err
			s.removeLocked(e)
		case !e.dead:
			e.verify, e.tag = false, ""
			e.state = stClean
			e.at = s.now()
			s.lruFor(e).pushFront(e)
			if s.timeout > 0 {
				s.scheduleLocked(e.at + s.timeout)
			}
		}
	}
	close(e.loaded)
	s.unpinLocked(e)
}

// checkBelow says whether block e.n below differs from the cached copy
// (zero, with tag) and if so leaves the block below in buf, with its tag.
// With a tag (or a zero block: expected not stored) and a Tagger below it
// is one conditional read; otherwise the block is read and compared.
func (s *Store) checkBelow(ctx context.Context, e *entry, zero bool, tag string, buf []byte) (bool, string, error) {
	if s.tagger != nil && (zero || tag != "") {
		return s.tagger.ReadBlockIfChanged(ctx, e.n, tag, buf)
	}
	tag, err := s.readBelow(ctx, e.n, buf)
	if err != nil {
		return false, "", err
	}
	if zero {
		return !blockstore.IsZero(buf), tag, nil
	}
	c := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(c)
	e.dmu.RLock()
	err = s.slots.Read(e.slot, 0, *c)
	e.dmu.RUnlock()
	// A copy that cannot be read is replaced by the block below.
	return err != nil || !bytes.Equal(*c, buf), tag, nil
}
