package cache

// counters are the Store's running totals, guarded by Store.mu.
type counters struct {
	initialSize  uint64
	readHits     uint64
	readMisses   uint64
	writeHits    uint64
	writeMisses  uint64
	readAheads   uint64
	prefetches   uint64
	uploads      uint64
	uploadErrors uint64
	expired      uint64
	verified     uint64
	mismatch     uint64
}

// Stats are the cache's counters (s3backer's block_cache_* stats and a few
// more), for the stats file and metrics.
type Stats struct {
	// CurrentSize is the number of blocks in the cache now.
	CurrentSize uint64
	// InitialSize is the number of blocks found in the slot store at open
	// (a cache file); 0 in memory.
	InitialSize uint64
	// DirtyBlocks is the number of blocks not yet written back (uploading
	// included); DirtyRatio is that over the capacity.
	DirtyBlocks uint64
	DirtyRatio  float64
	// ReadHits counts reads served from the cache (including readers that
	// waited for another's read); ReadMisses reads that went below.
	ReadHits   uint64
	ReadMisses uint64
	// WriteHits counts writes to blocks in the cache; WriteMisses the
	// others.
	WriteHits   uint64
	WriteMisses uint64
	// ReadAheads counts blocks loaded by read-ahead; Prefetches those
	// loaded for Prefetch.
	ReadAheads uint64
	Prefetches uint64
	// Uploads counts blocks written back; UploadErrors failed attempts.
	Uploads      uint64
	UploadErrors uint64
	// Expired counts clean blocks evicted by Timeout.
	Expired uint64
	// Verified counts recovered clean blocks found unchanged below on
	// their first read; Mismatch those found changed (replaced by the
	// data below). s3backer's cache-file verification counters.
	Verified uint64
	Mismatch uint64
}

// ReadHitRatio is ReadHits / (ReadHits + ReadMisses), 0 without reads.
func (st Stats) ReadHitRatio() float64 { return ratio(st.ReadHits, st.ReadMisses) }

// WriteHitRatio is WriteHits / (WriteHits + WriteMisses).
func (st Stats) WriteHitRatio() float64 { return ratio(st.WriteHits, st.WriteMisses) }

func ratio(hits, misses uint64) float64 {
	if hits+misses == 0 {
		return 0
	}
	return float64(hits) / float64(hits+misses)
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	dirty := max(0, s.dirty) // reservations count too, briefly
	return Stats{
		CurrentSize:  uint64(len(s.entries)),
		InitialSize:  s.st.initialSize,
		DirtyBlocks:  uint64(dirty),
		DirtyRatio:   float64(dirty) / float64(s.size),
		ReadHits:     s.st.readHits,
		ReadMisses:   s.st.readMisses,
		WriteHits:    s.st.writeHits,
		WriteMisses:  s.st.writeMisses,
		ReadAheads:   s.st.readAheads,
		Prefetches:   s.st.prefetches,
		Uploads:      s.st.uploads,
		UploadErrors: s.st.uploadErrors,
		Expired:      s.st.expired,
		Verified:     s.st.verified,
		Mismatch:     s.st.mismatch,
	}
}
