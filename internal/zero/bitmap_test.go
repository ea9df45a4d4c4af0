package zero

import (
	"math/rand/v2"
	"sync"
	"testing"
)

func TestSpread(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		x := r.Uint32()
		var want uint64
		for i := range 32 {
			want |= uint64(x>>i&1) << (2 * i)
		}
		if got := spread(x); got != want {
			t.Fatalf("spread(%#x) = %#x, want %#x", x, got, want)
		}
	}
}

func countZeros(model []state) int64 {
	var k int64
	for _, s := range model {
		if s == zero {
			k++
		}
	}
	return k
}

// TestStateMapModel checks set, get and settle against a plain slice, on a
// disk whose last page and last word are partial.
func TestStateMapModel(t *testing.T) {
	const n = 3*blocksPerPage + 1000 + 7
	r := rand.New(rand.NewPCG(3, 4))
	m := newStateMap(n)
	model := make([]state, n)
	// Leave page 1 untouched and unreported: settling must share it.
	for range 20000 {
		b := r.Uint64N(n)
		if b/blocksPerPage == 1 {
			continue
		}
		s := state(r.IntN(4))
		if s == unknown {
			s = doubt // nothing ever goes back to unknown
		}
		if prev := m.set(b, s); prev != model[b] {
			t.Fatalf("set(%d): previous %d, want %d", b, prev, model[b])
		}
		model[b] = s
	}
	reported := newBitSet(n)
	rep := make([]bool, n)
	for range 5000 {
		b := r.Uint64N(n)
		if b/blocksPerPage == 1 {
			continue
		}
		reported.add(b)
		rep[b] = true
	}
	reported.add(n - 1)
	rep[n-1] = true
	var wantZeroed, wantStored uint64
	for b := range model {
		if model[b] == unknown {
			if rep[b] {
				model[b] = present
				wantStored++
			} else {
				model[b] = zero
				wantZeroed++
			}
		}
	}
	zeroed, stored := m.settle(reported)
	if zeroed != wantZeroed || stored != wantStored {
		t.Fatalf("settle: %d zeroed %d stored, want %d %d", zeroed, stored, wantZeroed, wantStored)
	}
	for b := range model {
		if got := m.get(uint64(b)); got != model[b] {
			t.Fatalf("block %d: state %d, want %d", b, got, model[b])
		}
	}
	if m.dir[1].Load() != sharedZero {
		t.Fatal("untouched, unreported page was not shared after settling")
	}
	if got, want := m.zeros.Load(), countZeros(model); got != want {
		t.Fatalf("zero count %d, want %d", got, want)
	}
	// Writing into the shared page copies it and leaves the rest zero.
	b := uint64(blocksPerPage + 5)
	m.set(b, present)
	model[b] = present
	if sharedZero[0].Load() != lowBits || m.get(b+1) != zero || m.get(b) != present {
		t.Fatal("copy-on-write of the shared zero page failed")
	}
	if got, want := m.zeros.Load(), countZeros(model); got != want {
		t.Fatalf("zero count after copy %d, want %d", got, want)
	}
}

// TestStateMapSparse: a 1 TiB disk of 4 KiB blocks (2^28), touched at a
// few places and then surveyed as empty, holds a page per touched place
// and the directory, not 64 MiB.
func TestStateMapSparse(t *testing.T) {
	const n = 1 << 28
	m := newStateMap(n)
	r := rand.New(rand.NewPCG(5, 6))
	blocks, touched := map[uint64]bool{}, map[uint64]bool{}
	for range 100 {
		b := r.Uint64N(n)
		m.set(b, present)
		blocks[b] = true
		touched[b/blocksPerPage] = true
	}
	zeroed, stored := m.settle(newBitSet(n))
	if stored != 0 || zeroed != n-uint64(len(blocks)) {
		t.Fatalf("settle: %d zeroed, %d stored; want %d, 0", zeroed, stored, n-len(blocks))
	}
	if got := m.pagesAllocated(); got != len(touched) {
		t.Fatalf("%d pages allocated, want %d", got, len(touched))
	}
	if got := m.zeros.Load(); got != int64(zeroed) {
		t.Fatalf("zero count %d, want %d", got, zeroed)
	}
	t.Logf("2^28 blocks: directory %d KiB, %d pages of 4 KiB", len(m.dir)*8/1024, m.pagesAllocated())
}

// TestStateMapConcurrent: goroutines changing neighbouring blocks of the
// same words never lose each other's updates.
func TestStateMapConcurrent(t *testing.T) {
	const n, workers, rounds = 4 * blocksPerWord, 8, 500
	m := newStateMap(n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				for b := uint64(w); b < n; b += workers {
					m.set(b, state(1+(r+int(b))%3))
				}
			}
		})
	}
	wg.Wait()
	var want int64
	for b := range uint64(n) {
		s := state(1 + (rounds-1+int(b))%3)
		if got := m.get(b); got != s {
			t.Fatalf("block %d: state %d, want %d", b, got, s)
		}
		if s == zero {
			want++
		}
	}
	if got := m.zeros.Load(); got != want {
		t.Fatalf("zero count %d, want %d", got, want)
	}
}

func TestBitSetAnyIn(t *testing.T) {
	const n = 5 * bitsPerPage
	b := newBitSet(n)
	if b.anyIn(0, n) {
		t.Fatal("empty set has a member")
	}
	b.add(3*bitsPerPage + 70)
	for _, c := range []struct {
		first, count uint64
		want         bool
	}{
		{0, n, true},
		{0, 3 * bitsPerPage, false},
		{3 * bitsPerPage, 64, false},
		{3*bitsPerPage + 64, 64, true},
		{4 * bitsPerPage, bitsPerPage, false},
		{4 * bitsPerPage, 2 * bitsPerPage, false}, // runs past the end
	} {
		if got := b.anyIn(c.first, c.count); got != c.want {
			t.Errorf("anyIn(%d, %d) = %v, want %v", c.first, c.count, got, c.want)
		}
	}
	if b.bits32(3*bitsPerPage+64) != 1<<6 || b.bits32(3*bitsPerPage+96) != 0 {
		t.Fatal("bits32 misplaces a member")
	}
}
