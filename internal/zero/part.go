package zero

import (
	"context"
	"sync"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

var _ blockstore.PartReader = (*Store)(nil)

// ReadPart fills p with bytes [off, off+len(p)) of block n: zeroes for a
// known-zero block, without I/O; else through the store below's ReadPart
// when it has one (a cache hit then copies only the part), else by
// reading the whole block.
func (s *Store) ReadPart(ctx context.Context, n uint64, off int, p []byte) error {
	if err := blockstore.CheckPart(s, n, off, p); err != nil {
		return err
	}
	st := s.states.get(n)
	if st == zero {
		clear(p)
		s.zeroReads.Add(1)
		return nil
	}
	if s.partLower == nil {
		return s.readPartWhole(ctx, n, off, p)
	}
	if st == present {
		// Nothing to learn: skip the stripe bookkeeping on the hot path
		// of small reads of cached blocks.
		return s.partLower.ReadPart(ctx, n, off, p)
	}
	t := s.beginRead(n)
	if err := s.partLower.ReadPart(ctx, n, off, p); err != nil {
		return err
	}
	// Data in the part means data in the block. Zeroes in a part say
	// nothing about the rest of it, so they teach nothing.
	if !blockstore.IsZero(p) {
		s.endRead(n, t, present)
	}
	return nil
}

// readPartWhole reads all of block n (learning what ReadBlock learns) and
// copies out the part.
func (s *Store) readPartWhole(ctx context.Context, n uint64, off int, p []byte) error {
	buf := s.getBuf()
	defer s.bufs.Put(buf)
	if err := s.ReadBlock(ctx, n, *buf); err != nil {
		return err
	}
	copy(p, (*buf)[off:])
	return nil
}

// blockBufs hands out block-sized buffers for whole-block reads of parts.
type blockBufs struct {
	sync.Pool
}

func (s *Store) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, s.BlockSize())
	return &b
}
