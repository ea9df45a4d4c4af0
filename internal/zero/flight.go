package zero

import "sync"

// What a read or write of the store below learns is recorded only if no
// other write of the same block overlapped it: two overlapping writes may
// land below in either order, and a read overlapping a write may return
// the old data, so recording such a result could make the bitmap call a
// stored block zero, and then reads would lose its data. Overlaps are
// found per stripe of blocks (block number modulo numStripes): fixed
// memory whatever the disk size or request; an overlap of two different
// blocks of one stripe only leaves a block in doubt, which is safe.
const numStripes = 4096

type stripe struct {
	mu     sync.Mutex
	active int    // writes in flight
	gen    uint64 // bumped when a write starts
}

// ticket is what an operation noted when it started.
type ticket struct {
	clean bool   // no write of the stripe was in flight
	gen   uint64 // the stripe's generation
}

// valid says whether nothing else wrote in the stripe since t was issued.
func (st *stripe) valid(t ticket) bool { return t.clean && st.gen == t.gen }

func (s *Store) stripe(n uint64) *stripe { return &s.stripes[n%numStripes] }

// beginWrite registers a write of block n, which is in doubt until it
// ends; that also keeps a survey from deciding it meanwhile.
func (s *Store) beginWrite(n uint64) ticket {
	st := s.stripe(n)
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.enter()
	s.states.set(n, doubt)
	return t
}

func (st *stripe) enter() ticket {
	t := ticket{clean: st.active == 0}
	st.active++
	st.gen++
	t.gen = st.gen
	return t
}

// endWrite records the outcome of a write begun with t, or doubt if
// another write overlapped it.
func (s *Store) endWrite(n uint64, t ticket, outcome state) {
	st := s.stripe(n)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.valid(t) {
		outcome = doubt
	}
	s.states.set(n, outcome)
	st.active--
}

func (s *Store) beginRead(n uint64) ticket {
	st := s.stripe(n)
	st.mu.Lock()
	defer st.mu.Unlock()
	return ticket{clean: st.active == 0, gen: st.gen}
}

// endRead records what a read begun with t found, unless a write
// overlapped it (that write records its own outcome).
func (s *Store) endRead(n uint64, t ticket, outcome state) {
	st := s.stripe(n)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.valid(t) {
		s.states.set(n, outcome)
	}
}

// bulkTickets are a bulk write's tickets, one per stripe it touches: its
// own blocks must not count as overlapping each other.
type bulkTickets map[uint64]ticket

func (s *Store) beginBulk(blocks []uint64) bulkTickets {
	ts := make(bulkTickets, min(len(blocks), numStripes))
	for _, n := range blocks {
		i := n % numStripes
		if _, ok := ts[i]; ok {
			continue
		}
		st := &s.stripes[i]
		st.mu.Lock()
		ts[i] = st.enter()
		st.mu.Unlock()
	}
	// Outside the locks is fine: the stripes are registered, so any read
	// or write overlapping from here on will not record its result.
	for _, n := range blocks {
		s.states.set(n, doubt)
	}
	return ts
}

func (s *Store) endBulk(blocks []uint64, ts bulkTickets, outcome state) {
	for _, n := range blocks {
		st := s.stripe(n)
		st.mu.Lock()
		o := outcome
		if !st.valid(ts[n%numStripes]) {
			o = doubt
		}
		s.states.set(n, o)
		st.mu.Unlock()
	}
	for i := range ts {
		st := &s.stripes[i]
		st.mu.Lock()
		st.active--
		st.mu.Unlock()
	}
}
