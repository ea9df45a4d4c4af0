package zero

import (
	"math/bits"
	"sync/atomic"
)

// state is what the layer knows about one block: 2 bits in a stateMap.
type state uint64

const (
	// unknown: never touched by this layer, so nothing below has changed
	// it since the process started; a survey may still decide it.
	unknown state = iota
	// zero: known absent; reads as zeroes without asking the store below.
	zero
	// present: known stored.
	present
	// doubt: unknown, but touched (a write in flight, failed or overlapped
	// by another): a survey must not decide it, because its listing may
	// predate the write.
	doubt
)

const (
	bitsPerBlock  = 2
	blocksPerWord = 64 / bitsPerBlock
	stateMask     = 1<<bitsPerBlock - 1
	// A page is 4 KiB of words: 16384 blocks, 64 MiB of a 4 KiB-block disk.
	pageWords     = 512
	blocksPerPage = pageWords * blocksPerWord
	// lowBits has the low bit of every 2-bit field set: the word whose
	// blocks are all zero.
	lowBits = 0x5555555555555555
)

type page [pageWords]atomic.Uint64

// sharedZero stands for any page whose blocks are all known zero, as a
// survey leaves most of a sparse disk; it is never written (writers copy
// it first), so a surveyed empty disk costs only its page directory.
var sharedZero = newPage(lowBits)

func newPage(fill uint64) *page {
	p := new(page)
	if fill != 0 {
		for i := range p {
			p[i].Store(fill)
		}
	}
	return p
}

// stateMap holds a state per block in pages allocated on first change: a
// nil page is all unknown, sharedZero all zero. Every operation is a few
// atomic word operations, so concurrent blocks never wait on a lock.
//
// Memory: a directory of 8 bytes per 16384 blocks (2 MiB at 2^32 blocks,
// 128 KiB at 2^28), plus 4 KiB for each page in which some block's state
// was set, except pages a survey found wholly empty: those share one
// read-only page. The worst case, every page private, is 2 bits per
// block: 1 GiB at 2^32 blocks, 64 MiB at 2^28.
type stateMap struct {
	n     uint64
	dir   []atomic.Pointer[page]
	zeros atomic.Int64 // blocks in state zero
}

func newStateMap(n uint64) *stateMap {
	return &stateMap{n: n, dir: make([]atomic.Pointer[page], (n+blocksPerPage-1)/blocksPerPage)}
}

func locate(n uint64) (pg uint64, word int, shift uint) {
	return n / blocksPerPage, int(n % blocksPerPage / blocksPerWord), uint(n%blocksPerWord) * bitsPerBlock
}

func (m *stateMap) get(n uint64) state {
	pg, w, sh := locate(n)
	p := m.dir[pg].Load()
	if p == nil {
		return unknown
	}
	return state(p[w].Load()>>sh) & stateMask
}

// writable returns page pg ready for word updates, allocating it or
// un-sharing it first.
func (m *stateMap) writable(pg uint64) *page {
	for {
		p := m.dir[pg].Load()
		if p != nil && p != sharedZero {
			return p
		}
		var np *page
		if p == sharedZero {
			np = newPage(lowBits)
		} else {
			np = newPage(0)
		}
		if m.dir[pg].CompareAndSwap(p, np) {
			return np
		}
	}
}

// set gives block n state s and returns its previous state.
func (m *stateMap) set(n uint64, s state) state {
	// A page is not allocated (or un-shared) just to store what it says.
	if cur := m.get(n); cur == s {
		return cur
	}
	pg, w, sh := locate(n)
	word := &m.writable(pg)[w]
	for {
		old := word.Load()
		prev := state(old>>sh) & stateMask
		if prev == s {
			return prev
		}
		if word.CompareAndSwap(old, old&^(stateMask<<sh)|uint64(s)<<sh) {
			switch {
			case s == zero:
				m.zeros.Add(1)
			case prev == zero:
				m.zeros.Add(-1)
			}
			return prev
		}
	}
}

// settle ends a successful survey: every block still unknown becomes
// present if reported, zero if not. Blocks in any other state were touched
// and keep what they know. It returns how many blocks became each.
func (m *stateMap) settle(reported *bitSet) (zeroed, stored uint64) {
	for pg := range m.dir {
		base := uint64(pg) * blocksPerPage
		if m.dir[pg].Load() == nil && !reported.anyIn(base, blocksPerPage) &&
			m.dir[pg].CompareAndSwap(nil, sharedZero) {
			z := min(m.n-base, blocksPerPage)
			m.zeros.Add(int64(z))
			zeroed += z
			continue
		}
		p := m.writable(uint64(pg))
		for w := range p {
			first := base + uint64(w)*blocksPerWord
			if first >= m.n {
				break
			}
			valid := ^uint64(0)
			if left := m.n - first; left < blocksPerWord {
				valid = 1<<(left*bitsPerBlock) - 1
			}
			rep := spread(reported.bits32(first))
			for {
				old := p[w].Load()
				unk := ^(old | old>>1) & lowBits & valid // low bit of each unknown field
				toZero, toPresent := unk&^rep, unk&rep
				if unk == 0 || p[w].CompareAndSwap(old, old|toZero|toPresent<<1) {
					m.zeros.Add(int64(bits.OnesCount64(toZero)))
					zeroed += uint64(bits.OnesCount64(toZero))
					stored += uint64(bits.OnesCount64(toPresent))
					break
				}
			}
		}
	}
	return zeroed, stored
}

// spread moves bit i of x to bit 2i, lining a 32-block bit mask up with
// the low bits of a state word's fields.
func spread(x uint32) uint64 {
	v := uint64(x)
	v = (v | v<<16) & 0x0000ffff0000ffff
	v = (v | v<<8) & 0x00ff00ff00ff00ff
	v = (v | v<<4) & 0x0f0f0f0f0f0f0f0f
	v = (v | v<<2) & 0x3333333333333333
	v = (v | v<<1) & lowBits
	return v
}

// pagesAllocated counts private pages (tests and memory checks).
func (m *stateMap) pagesAllocated() int {
	k := 0
	for i := range m.dir {
		if p := m.dir[i].Load(); p != nil && p != sharedZero {
			k++
		}
	}
	return k
}

// bitSet is a set of block numbers, one bit each, in pages allocated on
// first use; safe for concurrent adds. The survey collects its reports in
// one, so a failed survey leaves the stateMap untouched.
type bitSet struct {
	dir []atomic.Pointer[page]
}

const bitsPerPage = pageWords * 64

func newBitSet(n uint64) *bitSet {
	return &bitSet{dir: make([]atomic.Pointer[page], (n+bitsPerPage-1)/bitsPerPage)}
}

func (b *bitSet) add(n uint64) {
	pg := n / bitsPerPage
	p := b.dir[pg].Load()
	if p == nil {
		b.dir[pg].CompareAndSwap(nil, newPage(0)) // a racing adder may win: fine
		p = b.dir[pg].Load()
	}
	p[n%bitsPerPage/64].Or(1 << (n % 64))
}

// bits32 returns the bits of blocks first .. first+31 (first a multiple
// of 32).
func (b *bitSet) bits32(first uint64) uint32 {
	p := b.dir[first/bitsPerPage].Load()
	if p == nil {
		return 0
	}
	return uint32(p[first%bitsPerPage/64].Load() >> (first % 64))
}

// anyIn reports whether a block of [first, first+count) is in the set;
// first and count are multiples of 64.
func (b *bitSet) anyIn(first, count uint64) bool {
	for w := first / 64; w < (first+count)/64 && w/pageWords < uint64(len(b.dir)); w++ {
		p := b.dir[w/pageWords].Load()
		if p == nil {
			w += pageWords - 1 - w%pageWords // skip the rest of this page
			continue
		}
		if p[w%pageWords].Load() != 0 {
			return true
		}
	}
	return false
}
