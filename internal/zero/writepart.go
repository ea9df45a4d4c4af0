package zero

import (
	"context"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

var _ blockstore.PartWriter = (*Store)(nil)

// WritePart stores p as bytes [off, off+len(p)) of block n.
//
//   - A known-zero block: a part of zeroes changes nothing and makes no
//     request; any other part goes down as a whole block, zeroes around
//     the part, so the store below need not fetch the rest (an absent
//     block read from S3 is a request for nothing).
//   - Otherwise through the store below's WritePart when it has one (a
//     cache hit then copies only the part), else by reading the whole
//     block, changing it and writing it back.
//
// A part holding data makes the block known present; a part of zeroes
// may have made the whole block zero, or not: the block is in doubt until
// a read or write tells.
func (s *Store) WritePart(ctx context.Context, n uint64, off int, p []byte) error {
	if err := blockstore.CheckPart(s, n, off, p); err != nil {
		return err
	}
	bs := s.BlockSize()
	switch {
	case len(p) == bs:
		return s.WriteBlock(ctx, n, p)
	case len(p) == 0:
		return nil
	}
	partZero := blockstore.IsZero(p)
	if s.states.get(n) == zero {
		if partZero {
			s.droppedWrites.Add(1)
			return nil
		}
		buf := s.getBuf()
		defer s.bufs.Put(buf)
		clear(*buf)
		copy((*buf)[off:], p)
		return s.writeDown(ctx, n, *buf, false)
	}
	if s.partWrite == nil {
		buf := s.getBuf()
		defer s.bufs.Put(buf)
		if err := s.ReadBlock(ctx, n, *buf); err != nil {
			return err
		}
		copy((*buf)[off:], p)
		return s.WriteBlock(ctx, n, *buf)
	}
	t := s.beginWrite(n)
	err := s.partWrite.WritePart(ctx, n, off, p)
	outcome := present
	if err != nil || partZero {
		// A failed write may have landed anyway (a lost reply).
		outcome = doubt
	}
	s.endWrite(n, t, outcome)
	return err
}
