package cache

// reorderWindow is how far out of order the blocks of a sequential
// reader may arrive and still count as sequential: one large request is
// split into blocks read in parallel (the volume fans them out), so block
// n+2 may be noted before n+1. Without the window every such swap reset
// the detection, and read-ahead rarely started.
const reorderWindow = 16

// maxRuns is how many sequential runs are followed at once: a new run
// replaces the one read least recently.
const maxRuns = 4

// seqRun is one sequential reader as the cache sees it.
type seqRun struct {
	first   uint64 // where the run began
	last    uint64 // the furthest block read
	count   int    // blocks of the run so far (0: unused)
	started int    // read-ahead blocks started beyond last
	window  int    // read-ahead blocks wanted beyond last: readAhead..raMax
	used    uint64 // runTick of its last read
}

// noteReadLocked tracks sequential reads as s3backer does (a read of the
// block after a run's last counts; readAheadTrigger of them start
// read-ahead), tolerating reordering within reorderWindow once a run has
// begun, and wakes a worker when read-ahead is due. A read that belongs to
// no run starts one (a random reader's reads start runs that never grow).
// It returns the read's run (-1: read-ahead is off).
func (s *Store) noteReadLocked(n uint64) int {
	if s.readAhead == 0 {
		return -1
	}
	s.runTick++
	i := s.runOf(n)
	r := &s.runs[i]
	switch {
	case r.count > 0 && n > r.last:
		// The next block; or, once the run is established, a little
		// further, past blocks still arriving. Count the distance:
		// what was read ahead up to n is now behind.
		adv := n - r.last
		r.count += int(adv)
		r.started = max(0, r.started-int(adv))
		r.last = n
	case r.count > 0:
		// A block of the run arriving late, or read again.
	default:
		*r = seqRun{first: n, last: n, count: 1, window: s.readAhead}
	}
	r.used = s.runTick
	if s.runWantsLocked(r) {
		s.kickLocked()
	}
	return i
}

// runOf returns the run block n belongs to or, if none, a cleared run to
// start (an unused one, else the one read least recently).
func (s *Store) runOf(n uint64) int {
	for i := range s.runs {
		r := &s.runs[i]
		if r.count == 0 {
			continue
		}
		if n > r.last && (n == r.last+1 || n-r.last <= reorderWindow && r.count >= 2) ||
			n == r.last || n < r.last && r.last-n < reorderWindow && r.count >= 2 {
			return i
		}
	}
	victim := 0
	for i := range s.runs {
		if s.runs[i].count == 0 {
			victim = i
			break
		}
		if s.runs[i].used < s.runs[victim].used {
			victim = i
		}
	}
	s.runs[victim] = seqRun{}
	return victim
}

// runWantsLocked reports whether run r is due more read-ahead.
func (s *Store) runWantsLocked(r *seqRun) bool {
	return r.count > 0 && r.count >= s.raTrigger && r.started < r.window
}

func (s *Store) readAheadWantedLocked() bool {
	if s.readAhead == 0 {
		return false
	}
	for i := range s.runs {
		if s.runWantsLocked(&s.runs[i]) {
			return true
		}
	}
	return false
}

// growReadAheadLocked doubles run i's read-ahead window (up to raMax): its
// reader is about to wait for a block read-ahead has not finished
// loading. Only an established run's reader counts; a random reader that
// lands on a read-ahead block changes nothing.
func (s *Store) growReadAheadLocked(i int) {
	if i < 0 {
		return
	}
	r := &s.runs[i]
	if r.count < s.raTrigger || r.count < 2 || r.window >= s.raMax {
		return
	}
	r.window = min(2*r.window, s.raMax)
	s.kickLocked()
}

// passedByOther reports whether a run other than i has already read
// through block n: a reader that read its part of the disk in order (as
// nbdcopy's threads do) must not have its blocks fetched again because
// the run before it reached the boundary. The price: a second reader
// following the first over the same blocks gets no read-ahead there
// (what it reads is likely still cached).
func (s *Store) passedByOther(i int, n uint64) bool {
	for j := range s.runs {
		o := &s.runs[j]
		if j != i && o.count >= 2 && o.first <= n && n <= o.last {
			return true
		}
	}
	return false
}

// readAheadLocked starts loading the next read-ahead block of a run that
// is due one, if a slot can be had without waiting.
func (s *Store) readAheadLocked() *entry {
	for i := range s.runs {
		r := &s.runs[i]
		for s.runWantsLocked(r) {
			ra := r.last + uint64(r.started) + 1
			if ra >= s.nblocks || ra <= r.last {
				r.started = r.window // the end of the disk
				break
			}
			if s.entries[ra] != nil || s.zeroing[ra] != nil || s.passedByOther(i, ra) {
				r.started++
				continue
			}
			slot, ok := s.allocSlotLocked(true)
			if !ok {
				return nil // nothing evictable: stop
			}
			r.started++
			s.st.readAheads++
			return s.newLoadLocked(ra, slot, true)
		}
	}
	return nil
}
