package cache

import (
	"context"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

var _ blockstore.PartWriter = (*Store)(nil)

// WritePart stores p as bytes [off, off+len(p)) of block n, dirty, like
// WriteBlock. A cached block is changed in place: only len(p) bytes are
// copied (through the slot store's PartSlots if it has one). A block not
// in the cache is read from below into a fresh slot first (s3backer's
// write_block_part), holding the slot so that readers wait for the result;
// a block being loaded is waited for, and a block recovered from a cache
// file is verified first, since the rest of it must be current.
//
// A rewrite while the block uploads is uploaded again after, as for
// WriteBlock. The block's zero flag stays set only while both it and p are
// zeroes; a block that becomes all zeroes through part writes is found so
// by the store below when it is written back (the codec deletes it).
func (s *Store) WritePart(ctx context.Context, n uint64, off int, p []byte) error {
	if err := blockstore.CheckPart(s, n, off, p); err != nil {
		return err
	}
	if len(p) == s.bs {
		return s.WriteBlock(ctx, n, p)
	}
	if len(p) == 0 {
		return nil
	}
	var w *flushWait
	if s.sync {
		w = newFlushWait()
	}
	partZero := blockstore.IsZero(p)
	err := s.update(ctx, n, true, w, func(e *entry, fresh bool) (bool, error) {
		if fresh {
			return s.fillForPart(ctx, e, off, p)
		}
		// dmu is held: zero, changed only by holders of dmu, is stable.
		return e.zero && partZero, s.writeSlotPart(e, off, p)
	})
	if err != nil {
		return err
	}
	return s.awaitUploads(ctx, w)
}

// writeSlotPart changes part of a slot holding its block's current data
// (dmu held): in place if the slot store can, else by rewriting the slot.
func (s *Store) writeSlotPart(e *entry, off int, p []byte) error {
	if ps, ok := s.slots.(PartSlots); ok {
		return ps.WritePart(e.slot, e.n, off, p)
	}
	b := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(b)
	buf := *b
	if err := s.slots.Read(e.slot, 0, buf); err != nil {
		return err
	}
	copy(buf[off:], p)
	var data []byte
	if !blockstore.IsZero(buf) {
		data = buf
	}
	return s.slots.Write(e.slot, e.n, data)
}

// fillForPart makes a fresh entry's slot (dmu held) the block below with
// p written at off. Nothing is pending below for the block (it was not
// cached, and no bulk zero of it runs), so below is current.
func (s *Store) fillForPart(ctx context.Context, e *entry, off int, p []byte) (bool, error) {
	if d, ok := s.slots.(directSlots); ok {
		buf := d.buffer(e.slot)
		if _, err := s.readBelow(ctx, e.n, buf); err != nil {
			return false, err
		}
		copy(buf[off:], p)
		zero := blockstore.IsZero(buf)
		d.filled(e.slot, zero)
		return zero, nil
	}
	b := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(b)
	buf := *b
	if _, err := s.readBelow(ctx, e.n, buf); err != nil {
		return false, err
	}
	copy(buf[off:], p)
	var data []byte
	if !blockstore.IsZero(buf) {
		data = buf
	}
	return data == nil, s.slots.Write(e.slot, e.n, data)
}
