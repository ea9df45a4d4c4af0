package cache

import (
	"cmp"
	"fmt"
	"syscall"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Slots keeps the data of the cache's slots: NumSlots() buffers of one
// block each. The cache decides which block lives in which slot and when;
// a Slots only stores bytes, plus — for a persistent implementation such
// as s3backer's cache file (--blockCacheFile) — a directory saying which
// block each slot holds and whether it is dirty.
//
// Concurrency: the cache never calls two methods on the same slot at once,
// except Read with Read. Calls on different slots may run concurrently.
// No method is called with the cache's global lock held, except Free.
//
// Ordering a persistent implementation must provide (s3backer's §8.4):
// Write must leave the directory entry saying "dirty, block n" only after
// the data is on disk, and must first invalidate any previous entry of the
// slot (a slot reused after Free may still be listed for its old block);
// Clean and Fill record a clean block after its data is on disk.
//
// Tags: Fill and Clean carry the block's tag in the store below (the S3
// ETag, blockstore.Tagger; "" if it has none or is not stored). A
// persistent implementation records it with a clean block and gives it
// back in Recovered, so that the cache can check its copy against the
// store below before using it after a restart.
type Slots interface {
	// NumSlots is the capacity of the cache, in blocks.
	NumSlots() int
	// Recovered lists the slots holding a block when the cache opens (a
	// cache file after a restart). The memory store has none.
	Recovered() []Recovered
	// Read copies len(p) bytes of the contents of slot, from offset off,
	// into p.
	Read(slot, off int, p []byte) error
	// Write makes data (nil: zeroes) the dirty contents of slot, which
	// holds block n: newer than the store below.
	Write(slot int, n uint64, data []byte) error
	// Fill makes data (nil: zeroes), just read from the store below with
	// tag tag, the clean contents of slot, which holds block n.
	Fill(slot int, n uint64, data []byte, tag string) error
	// Clean records that the contents of slot (block n) are now in the
	// store below, where they have tag tag. The data is unchanged.
	Clean(slot int, n uint64, tag string) error
	// Free says the slot no longer holds a block; it is reused later by
	// Write or Fill. Free is called with the cache's lock held: it must
	// not block (a persistent store invalidates the slot's directory entry
	// lazily, at the slot's next Write or Fill, before writing data).
	Free(slot int)
	// Close releases the store (the cache has flushed what it could).
	Close() error
}

// Recovered is a slot that holds a block when the cache opens.
type Recovered struct {
	Slot  int
	Block uint64
	// Dirty: the data is newer than the store below; it is written back
	// as soon as the cache starts.
	Dirty bool
	// Zero: the slot is known to hold zeroes. A store that cannot tell
	// cheaply leaves it false: the cache then treats the block as holding
	// data (the safe answer for Presence and Survey).
	Zero bool
	// Tag is the clean block's tag below when it was recorded ("" if
	// none was known, or for a zero block: not stored).
	Tag string
}

// Invalidator is implemented by persistent slot stores whose Free leaves
// the slot's directory entry in place until the slot is reused. The cache
// calls Invalidate (without its lock) for a freed slot before it changes
// the block below behind the slot store's back (a bulk zero of a block
// that was clean in the cache), so that a restart cannot bring back the
// old contents as clean.
type Invalidator interface {
	Invalidate(slot int) error
}

// PartSlots is implemented by slot stores that can change part of a
// slot in place: a small write to a cached block then costs the bytes
// written, not a whole-block read and write. The cache falls back to
// Read and Write of the whole slot for stores without it.
//
// The same ordering as Write applies: the slot's directory entry says
// "dirty, block n" only with contents that match it, and a write cut short
// must never leave the slot looking valid to a restart.
type PartSlots interface {
	// WritePart makes the slot's contents dirty (block n) with bytes
	// [off, off+len(p)) replaced by p; the rest keeps its contents. The
	// slot holds block n (Write, Fill or WritePart came before).
	WritePart(slot int, n uint64, off int, p []byte) error
}

// directSlots is implemented by slot stores that keep a slot's data in a
// memory buffer the cache may fill in place: a read from below then lands
// in the slot, with no copy. The cache calls these only for a slot whose
// contents nobody else uses meanwhile (a new entry whose dmu it holds).
type directSlots interface {
	// buffer returns the slot's buffer (allocated if need be) to fill;
	// the slot's contents are undefined until filled is called.
	buffer(slot int) []byte
	// filled says the buffer now holds the slot's contents; zero: they
	// are all zeroes (the buffer is not read).
	filled(slot int, zero bool)
}

// memSlots is the in-memory Slots: a buffer per slot, allocated the first
// time the slot holds non-zero data and then kept for reuse, so memory is
// at most NumSlots blocks. A slot holding zeroes needs no buffer.
type memSlots struct {
	bs   int
	bufs [][]byte
	zero []bool // the slot holds zeroes (its buffer, if any, is stale)
}

// NewMemSlots returns an in-memory Slots of n slots of bs bytes: the
// default when Options.Slots is nil.
func NewMemSlots(bs, n int) Slots {
	z := make([]bool, n)
	for i := range z {
		z[i] = true
	}
	return &memSlots{bs: bs, bufs: make([][]byte, n), zero: z}
}

func (m *memSlots) NumSlots() int          { return len(m.bufs) }
func (m *memSlots) Recovered() []Recovered { return nil }
func (m *memSlots) Clean(int, uint64, string) error {
	return nil
}
func (m *memSlots) Free(int)     {}
func (m *memSlots) Close() error { return nil }

func (m *memSlots) check(slot, off, n int) error {
	if slot < 0 || slot >= len(m.bufs) || off < 0 || n < 0 || n > m.bs-off {
		return fmt.Errorf("memory cache slot %d (%d bytes at %d): %w", slot, n, off, syscall.EINVAL)
	}
	return nil
}

func (m *memSlots) Read(slot, off int, p []byte) error {
	if err := m.check(slot, off, len(p)); err != nil {
		return err
	}
	if m.zero[slot] {
		clear(p)
	} else {
		copy(p, m.bufs[slot][off:])
	}
	return nil
}

func (m *memSlots) Write(slot int, _ uint64, data []byte) error {
	if err := m.check(slot, 0, m.bs); err != nil || (data != nil && len(data) != m.bs) {
		return cmp.Or(err, fmt.Errorf("memory cache slot %d: %d bytes: %w", slot, len(data), syscall.EINVAL))
	}
	if data == nil {
		m.zero[slot] = true
		return nil
	}
	copy(m.buffer(slot), data)
	m.zero[slot] = false
	return nil
}

func (m *memSlots) Fill(slot int, n uint64, data []byte, _ string) error {
	return m.Write(slot, n, data)
}

func (m *memSlots) WritePart(slot int, _ uint64, off int, p []byte) error {
	if err := m.check(slot, off, len(p)); err != nil {
		return err
	}
	if m.zero[slot] {
		if blockstore.IsZero(p) {
			return nil // zeroes stay zeroes
		}
		if m.bufs[slot] == nil {
			m.buffer(slot) // fresh memory reads as zeroes
		} else {
			clear(m.bufs[slot])
		}
		m.zero[slot] = false
	}
	copy(m.bufs[slot][off:], p)
	return nil
}

func (m *memSlots) buffer(slot int) []byte {
	if m.bufs[slot] == nil {
		// Filled at once (a read from below lands in it, or a write is
		// copied in): back it with memory in one go rather than a page
		// fault per 4 KiB, about a tenth of a cold read's CPU here.
		m.bufs[slot] = make([]byte, m.bs)
		populate(m.bufs[slot])
	}
	return m.bufs[slot]
}

func (m *memSlots) filled(slot int, zero bool) { m.zero[slot] = zero }

// allocated counts the buffers held (tests check the memory bound).
func (m *memSlots) allocated() int {
	k := 0
	for _, b := range m.bufs {
		if b != nil {
			k++
		}
	}
	return k
}
