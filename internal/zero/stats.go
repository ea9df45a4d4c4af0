package zero

// Stats are the layer's counters, for the stats file and metrics.
type Stats struct {
	// ZeroReads counts reads answered with zeroes from the bitmap.
	ZeroReads uint64
	// DroppedWrites counts zero writes of known-zero blocks not sent
	// below, single or in bulk.
	DroppedWrites uint64
	// KnownZero is how many blocks are known zero now.
	KnownZero uint64
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	return Stats{
		ZeroReads:     s.zeroReads.Load(),
		DroppedWrites: s.droppedWrites.Load(),
		KnownZero:     uint64(max(0, s.states.zeros.Load())),
	}
}
