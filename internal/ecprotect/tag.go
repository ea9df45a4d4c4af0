package ecprotect

import (
	"context"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Tagged returns the layer as a blockstore.Tagger when the store below it
// is one (the codec: tags are ETags), else the layer itself. With it, the
// block cache above keeps the tags of the blocks in its cache file and
// checks a recovered block after a restart with a conditional read (a 304
// costs no body) instead of reading it whole and comparing.
func (s *Store) Tagged() blockstore.Store {
	if t, ok := s.lower.(blockstore.Tagger); ok {
		return tagged{s, t}
	}
	return s
}

// tagged is the layer passing the tags of the Tagger below through.
type tagged struct {
	*Store
	t blockstore.Tagger
}

var _ blockstore.Tagger = tagged{}

func (s tagged) ReadBlockTag(ctx context.Context, n uint64, buf []byte) (string, error) {
	return s.read(ctx, n, buf, func() (string, error) { return s.t.ReadBlockTag(ctx, n, buf) })
}

func (s tagged) WriteBlockTag(ctx context.Context, n uint64, data []byte) (string, error) {
	return s.write(ctx, n, data, func() (string, error) { return s.t.WriteBlockTag(ctx, n, data) })
}

// ReadBlockIfChanged asks below only about a block the layer remembers
// nothing of (the case of a block recovered from a cache file, checked
// before anything is written to it). A remembered block is read whole and
// checked as ReadBlock does, and reported changed: a 304 from a store that
// may serve an old version could not be trusted.
func (s tagged) ReadBlockIfChanged(ctx context.Context, n uint64, tag string, buf []byte) (changed bool, newTag string, err error) {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return false, "", err
	}
	s.mu.Lock()
	s.expireLocked(time.Now())
	_, known := s.entries[n]
	s.mu.Unlock()
	if !known {
		return s.t.ReadBlockIfChanged(ctx, n, tag, buf)
	}
	newTag, err = s.ReadBlockTag(ctx, n, buf)
	return err == nil, newTag, err
}
