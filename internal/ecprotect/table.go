package ecprotect

import (
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// kind is what the layer remembers of a block.
type kind uint8

const (
	// writing: a write below is in flight; done is closed when it ends.
	writing kind = iota
	// written: the last write stored data whose hash is sum.
	written
	// zeroed: the last write made the block zero (deleted it).
	zeroed
	// unknown: the last write failed; it may or may not have landed.
	unknown
)

// entry is one remembered block. All fields are guarded by Store.mu.
type entry struct {
	n    uint64
	kind kind
	// zero and sum describe the data of the write in flight or last
	// ended (sum only when not zero).
	zero bool
	sum  uint64
	at   time.Time     // when the last write ended (not writing)
	done chan struct{} // writing: closed when the write ends

	prev, next *entry // in Store.ended, when not writing
}

// expect is what a read of the block may return: the data of the write
// in flight or last written. A failed write allows anything.
func (e *entry) expect() expectation {
	switch {
	case e.kind == unknown:
		return expectation{any: true}
	case e.zero:
		return expectation{zero: true}
	}
	return expectation{sum: e.sum}
}

// expectation is one acceptable content of a block.
type expectation struct {
	any  bool
	zero bool
	sum  uint64
}

func (s *Store) matches(x expectation, buf []byte) bool {
	switch {
	case x.any:
		return true
	case x.zero:
		return blockstore.IsZero(buf)
	}
	return s.sum(buf) == x.sum
}

// list is a doubly linked list of entries whose write has ended, in the
// order they ended, so the oldest (first to expire) is at the front.
type list struct{ front, back *entry }

func (l *list) pushBack(e *entry) {
	e.prev, e.next = l.back, nil
	if l.back != nil {
		l.back.next = e
	} else {
		l.front = e
	}
	l.back = e
}

func (l *list) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.front = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.back = e.prev
	}
	e.prev, e.next = nil, nil
}

// expireLocked forgets the writes that ended Options.Time or longer ago.
func (s *Store) expireLocked(now time.Time) {
	if s.opt.Time == 0 {
		return
	}
	removed := false
	for e := s.ended.front; e != nil && !now.Before(e.at.Add(s.opt.Time)); e = s.ended.front {
		s.ended.remove(e)
		delete(s.entries, e.n)
		removed = true
	}
	if removed {
		s.wakeLocked()
	}
}

// forgetLocked drops an ended entry before it expires.
func (s *Store) forgetLocked(e *entry) {
	s.ended.remove(e)
	delete(s.entries, e.n)
	s.wakeLocked()
}

// wakeLocked wakes the writers waiting for room in the table.
func (s *Store) wakeLocked() {
	close(s.space)
	s.space = make(chan struct{})
}
