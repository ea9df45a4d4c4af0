// Package cache is s3backer's block cache (--blockCacheSize and friends): a
// blockstore.Store layer that keeps recently used blocks in memory, absorbs
// writes and writes them back in the background, and reads ahead.
//
// In the stack it sits under the known-zero layer and above the codec:
//
//	volume -> zero -> cache -> codec -> retry -> s3
//
// # Entries and slots
//
// The cache holds at most Size blocks. Each cached block is an entry in a
// map, bound to a slot of a Slots (memory now, the cache file later) that
// holds its data; an entry is in one state:
//
//	new        a writer is filling its fresh slot (readers wait for it)
//	loading    being read from below; concurrent readers wait for that
//	           one read (singleflight), and so do writers (as in
//	           s3backer): the loader owns the slot, and may read from
//	           below straight into it (the memory store lends its
//	           buffer), saving a block copy per miss
//	clean      same data as below; in an LRU list (blocks below
//	           NumProtected in a second list, evicted only when the
//	           first is empty); evictable unless pinned by a reader
//	dirty      newer than below; in one write-back queue
//	uploading  a worker is writing it below; reads are served from the
//	           slot, and a write meanwhile is kept: the worker queues the
//	           block again when its upload ends
//
// Memory is Size slots plus one block buffer per worker (uploads copy the
// slot into it so writers never wait for S3), one per partial read or
// write missing at that moment with a slot store that lends no buffer
// (ReadPart, WritePart), and the entries themselves (about 200 bytes
// each). A read miss with no free or evictable slot reads from below
// without caching; a writer with no slot waits while the oldest dirty
// blocks are written back at once (s3backer: "forced out"). Writers wait
// for ever (or until their context ends) if those uploads keep failing.
//
// Locking: one mutex (mu) guards the map, lists, queues and entry states;
// each entry's RWMutex (dmu) guards its slot's contents, so block copies
// run outside mu. dmu is taken before mu, never while holding mu (except
// on a fresh entry, which cannot block). Readers and writers pin an entry
// while they use it outside mu: pinned entries are not evicted, and a
// removed entry keeps its slot until its last pin goes.
//
// # Write-back
//
// A bounded pool of Threads workers, no goroutine per block, takes work in
// this order: the urgent queue (blocks a Flush or a synchronous writer
// waits for), the dirty queue (a heap by deadline = first write + write
// delay), the retry queue (blocks whose upload failed, by next attempt),
// then read-ahead and prefetch loads. One scheduler goroutine holds one
// timer for the earliest deadline, retry or clean-block expiry and wakes a
// worker; nothing polls. As in s3backer, write-back accelerates as dirty
// blocks fill the cache: a dirty block is due at its deadline minus
// WriteDelay * min(1, dirtyRatio/maxDirtyRatio), where maxDirtyRatio is
// min(0.9, MaxDirty/Size).
//
// A part write (WritePart) changes the cached block in place, in any
// state a whole write could; a block not cached is first read from below
// into its new slot, holding the slot (readers wait), as s3backer does.
//
// Rewriting a dirty block that has not started uploading only replaces the
// slot's data and keeps its deadline: many writes inside the delay make
// one PUT. A block rewritten while it uploads is not cancelled (a
// cancelled PUT may still land at S3 after a later one); the worker sees
// the newer write when the upload ends and queues the block again, so the
// last upload always carries the last write. Writes carry a sequence
// number (wseq) and an upload remembers the one it carried (upSeq), which
// is how Flush knows which upload makes which write durable.
//
// A failed upload leaves the block dirty, in the retry queue, with backoff
// from 1 s doubling to 1 min (the retry layer below already retried for
// ~30 s, so this is a persistent failure), and retries forever. Flush
// moves every dirty block to the urgent queue and waits, for each, for an
// upload that carries every write acknowledged before the call: it
// succeeds, or it fails and Flush returns its error — but only a failure
// of an attempt that started after the Flush counts (an older one gets
// a fresh attempt first, so a store that just recovered is not reported
// as failing). Then it flushes the store below. A block in backoff gets
// an immediate attempt from a Flush. A synchronous write waits the same
// way for its own block.
//
// # Zero writes and bulk zero
//
// A zero write is an ordinary dirty write (the slot needs no buffer in
// memory) and its upload is a WriteBlock(nil) below: a DELETE. ZeroBlocks
// splits the blocks: those in the cache (any state but clean-and-unpinned)
// get zero writes through the cache like WriteBlock(nil); the others, and
// clean unpinned blocks (which it drops from the cache), are zeroed below
// at once with the BulkZeroer below (or per-block zero writes). Ordering:
// while that pass-through runs, its blocks are registered in a "zeroing"
// set, and any read, write, prefetch or bulk zero of one of them waits for
// it to end (read-ahead skips them). Hence
//   - a write after ZeroBlocks returns either creates a new dirty entry,
//     uploaded after the DELETE completed, or rewrites the cached entry
//     after its zero write (a higher wseq): the write wins;
//   - a read can never load a block's old data into the cache while the
//     DELETE is in flight (it would then serve stale data for ever);
//   - a block in the cache is never also passed through, so its queued
//     upload and the DELETE cannot race.
//
// # Presence and survey
//
// Presence answers from the cache for blocks it holds (zero data: Absent,
// else Present) and asks the Prober below for the others (Unknown if there
// is none). Survey forwards to the Surveyor below, drops reports of blocks
// that hold zeroes in the cache at the time of the report (their last
// acknowledged write deleted them), and after the listing reports every
// dirty or uploading block holding data. The known-zero layer above trusts
// a survey only for blocks it never touched since it started, and every
// block that is dirty here was written through it, so these cache reports
// cannot change its decisions; they make the survey right for any other
// caller too (duplicates are allowed by the Surveyor contract).
//
// # Read-ahead and prefetch
//
// Read-ahead follows s3backer: consecutive block reads (a repeat of the
// last block does not break the run) counted up to ReadAheadTrigger start
// ReadAhead blocks after the last one read, loaded by idle workers in
// parallel, only into free or evictable slots: read-ahead stops when the
// cache has nothing evictable. Unlike s3backer, ReadAhead is where the
// window starts, not where it stays: each time the reader has to wait
// for a block read-ahead is still loading, read-ahead was not far enough
// ahead, and the window doubles, up to one block per worker (at most half
// the cache); a new run starts again from ReadAhead. A reader with one
// request in flight (dd, a FUSE file) otherwise waits on every window.
// And several runs are followed at once (maxRuns), so that two sequential
// readers, or one with random reads in between, do not reset each other.
// Prefetch (NBD_CMD_CACHE) is asynchronous: it queues the range (up to
// Size blocks queued in all; the rest of a larger request is dropped, the
// command being advisory) and returns; the workers load the blocks like
// read-ahead, after it.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// s3backer's defaults.
const (
	DefaultSize       = 1000
	DefaultThreads    = 20
	DefaultWriteDelay = 250 * time.Millisecond
)

// Retry backoff of a block whose upload failed.
const (
	minRetryBackoff = time.Second
	maxRetryBackoff = time.Minute
)

// ErrClosed is returned by calls on a closed cache.
var ErrClosed = fmt.Errorf("block cache closed: %w", syscall.ESHUTDOWN)

// Options configure a Store. The zero value is a write-through cache of
// DefaultSize blocks; DefaultOptions has s3backer's defaults.
type Options struct {
	// Size is the capacity in blocks (--blockCacheSize; 0: DefaultSize),
	// reduced to the number of blocks. Ignored when Slots is set: the
	// slot store's capacity is the cache's.
	Size int
	// Threads is the number of workers writing back and reading ahead
	// (--blockCacheThreads; 0: DefaultThreads).
	Threads int
	// WriteDelay is how long a dirty block may wait before it is written
	// back (--blockCacheWriteDelay). 0 is write-through: WriteBlock returns
	// once the block is written below.
	WriteDelay time.Duration
	// MaxDirty bounds the dirty blocks (--blockCacheMaxDirty; 0: no bound
	// but Size); a writer that would exceed it waits. Concurrent writes
	// of a block being written back may exceed it by the number of such
	// writers for the length of an upload.
	MaxDirty int
	// Sync makes writes return once written below (--blockCacheSync);
	// like s3backer it needs WriteDelay 0, which already does so.
	Sync bool
	// Timeout evicts clean blocks unused for this long
	// (--blockCacheTimeout; 0: never).
	Timeout time.Duration
	// NumProtected: clean blocks numbered below it are evicted only when
	// no other clean block is left (--blockCacheNumProtected).
	NumProtected uint64
	// ReadAhead is how many blocks to read ahead of a sequential reader
	// (--readAhead; 0: none); ReadAheadTrigger how many consecutive blocks
	// make a sequential reader (--readAheadTrigger).
	ReadAhead        int
	ReadAheadTrigger int
	// Slots stores the data; nil keeps it in memory (NewMemSlots).
	Slots Slots
	// NoVerify trusts the clean blocks a persistent Slots recovers
	// (--blockCacheNoVerify). Without it each is checked against the
	// store below on its first read: a conditional read by tag if the
	// store below is a blockstore.Tagger and the tag is known, else a
	// read and a comparison.
	NoVerify bool
	// Logger receives write-back failures; nil discards.
	Logger *slog.Logger
}

// DefaultOptions returns s3backer's defaults (FUSE read-ahead; NBD mode
// turns read-ahead off).
func DefaultOptions() Options {
	return Options{
		Size:             DefaultSize,
		Threads:          DefaultThreads,
		WriteDelay:       DefaultWriteDelay,
		ReadAhead:        4,
		ReadAheadTrigger: 2,
	}
}

// Store is the block cache: a blockstore.Store, Prober, Prefetcher,
// Surveyor, BulkZeroer, PartReader and PartWriter; safe for concurrent
// use.
type Store struct {
	lower     blockstore.Store
	prober    blockstore.Prober     // nil if lower is not one
	surveyor  blockstore.Surveyor   // likewise
	bulk      blockstore.BulkZeroer // likewise
	slots     Slots
	tagger    blockstore.Tagger // lower as a Tagger, or nil
	noVerify  bool
	log       *slog.Logger
	bs        int
	nblocks   uint64
	size      int
	threads   int
	delay     time.Duration
	sync      bool
	maxDirty  int
	maxRatio  float64
	timeout   time.Duration
	protected uint64
	readAhead int
	raTrigger int

	epoch   time.Time
	ctx     context.Context // of the workers' I/O; cancelled by Close
	cancel  context.CancelFunc
	quit    chan struct{} // closed by Close: waiters give up
	resched chan struct{} // pokes the scheduler (capacity 1)
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closeOK bool // Close ran
	closeE  error

	mu      sync.Mutex
	work    sync.Cond // idle workers wait here
	idle    int       // workers waiting on work
	closed  bool
	entries map[uint64]*entry
	free    []int // free slots, lowest last
	lru     list  // clean blocks, most recently used first
	lruProt list  // clean protected blocks
	urgent  list  // dirty blocks someone waits for
	busy    list  // blocks uploading
	dirtyQ  entryHeap
	retryQ  entryHeap
	dirty   int    // dirty + uploading entries, plus writers' reservations
	seq     uint64 // last write sequence number
	timerAt tick   // when the scheduler wakes next (never: no timer)

	spaceCh      chan struct{} // closed (and replaced) when a slot or dirty budget frees up
	spaceWaiters int

	zeroing map[uint64]*zeroOp

	// Sequential-read detection (readahead.go).
	runs    [maxRuns]seqRun
	runTick uint64 // bumped by every read noted: the runs' LRU clock
	raMax   int

	pfq []blockRange // queued prefetches
	pfN uint64       // blocks queued

	st counters

	bufs sync.Pool // *[]byte of a block: whole-block reads for ReadPart misses
}

var (
	_ blockstore.Store      = (*Store)(nil)
	_ blockstore.Prober     = (*Store)(nil)
	_ blockstore.Prefetcher = (*Store)(nil)
	_ blockstore.Surveyor   = (*Store)(nil)
	_ blockstore.BulkZeroer = (*Store)(nil)
)

// New returns a cache over lower and starts its workers; Close stops them.
func New(lower blockstore.Store, opt Options) (*Store, error) {
	switch {
	case opt.Size < 0, opt.Threads < 0, opt.MaxDirty < 0, opt.ReadAhead < 0, opt.ReadAheadTrigger < 0,
		opt.WriteDelay < 0, opt.Timeout < 0:
		return nil, fmt.Errorf("block cache: negative option: %w", syscall.EINVAL)
	case opt.Sync && opt.WriteDelay > 0:
		return nil, fmt.Errorf("block cache: synchronous writes need a write delay of 0, not %v: %w", opt.WriteDelay, syscall.EINVAL)
	}
	bs, nblocks := lower.BlockSize(), lower.NumBlocks()
	size := opt.Size
	if size == 0 {
		size = DefaultSize
	}
	slots := opt.Slots
	if slots != nil {
		size = slots.NumSlots()
	}
	if uint64(size) > nblocks {
		size = int(nblocks)
	}
	if size <= 0 {
		return nil, fmt.Errorf("block cache of %d blocks: %w", size, syscall.EINVAL)
	}
	if slots == nil {
		slots = NewMemSlots(bs, size)
	}
	threads := opt.Threads
	if threads == 0 {
		threads = DefaultThreads
	}
	maxDirty := opt.MaxDirty
	if maxDirty > size {
		maxDirty = 0 // Size bounds it anyway
	}
	limit := size
	if maxDirty > 0 {
		limit = maxDirty
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		lower:     lower,
		slots:     slots,
		log:       log,
		bs:        bs,
		nblocks:   nblocks,
		size:      size,
		threads:   threads,
		delay:     opt.WriteDelay,
		sync:      opt.Sync || opt.WriteDelay == 0,
		maxDirty:  maxDirty,
		maxRatio:  min(0.9, float64(limit)/float64(size)),
		timeout:   opt.Timeout,
		protected: opt.NumProtected,
		readAhead: opt.ReadAhead,
		raTrigger: opt.ReadAheadTrigger,
		raMax:     max(opt.ReadAhead, min(threads, size/2)),
		epoch:     time.Now(),
		quit:      make(chan struct{}),
		resched:   make(chan struct{}, 1),
		entries:   make(map[uint64]*entry, size),
		timerAt:   never,
		spaceCh:   make(chan struct{}),
		zeroing:   make(map[uint64]*zeroOp),
	}
	s.prober, _ = lower.(blockstore.Prober)
	s.tagger, _ = lower.(blockstore.Tagger)
	s.noVerify = opt.NoVerify
	s.surveyor, _ = lower.(blockstore.Surveyor)
	s.bulk, _ = lower.(blockstore.BulkZeroer)
	s.work.L = &s.mu
	s.bufs.New = func() any { b := make([]byte, bs); return &b }
	for _, l := range []*list{&s.lru, &s.lruProt, &s.urgent, &s.busy} {
		l.init()
	}
	if err := s.recover(slots.Recovered()); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(threads + 1)
	for range threads {
		go s.worker()
	}
	go s.scheduler()
	return s, nil
}

// recover loads the blocks a persistent slot store holds at open: clean
// ones into the LRU lists, dirty ones into the urgent-free dirty queue,
// due at once.
func (s *Store) recover(rec []Recovered) error {
	used := make([]bool, s.slots.NumSlots())
	for _, r := range rec {
		switch {
		case r.Slot < 0 || r.Slot >= len(used) || used[r.Slot]:
			return fmt.Errorf("block cache: recovered slot %d invalid or listed twice: %w", r.Slot, syscall.EINVAL)
		case r.Block >= s.nblocks:
			return fmt.Errorf("block cache: recovered block %d beyond the disk (%d blocks): %w", r.Block, s.nblocks, syscall.EINVAL)
		case s.entries[r.Block] != nil:
			return fmt.Errorf("block cache: block %d recovered twice: %w", r.Block, syscall.EINVAL)
		}
		used[r.Slot] = true
		e := &entry{n: r.Block, slot: r.Slot, zero: r.Zero, hidx: -1}
		s.entries[r.Block] = e
		if r.Dirty {
			s.seq++
			e.wseq = s.seq
			e.state = stDirty
			s.dirty++
			s.enqueueLocked(e)
		} else {
			e.state = stClean
			e.verify, e.tag = !s.noVerify, r.Tag
			s.lruFor(e).pushBack(e)
		}
	}
	s.st.initialSize = uint64(len(rec))
	// Free slots, lowest allocated first.
	for i := len(used) - 1; i >= 0; i-- {
		if !used[i] && i < s.size {
			s.free = append(s.free, i)
		}
	}
	return nil
}

func (s *Store) BlockSize() int    { return s.bs }
func (s *Store) NumBlocks() uint64 { return s.nblocks }

func (s *Store) now() tick { return time.Since(s.epoch) }

func (s *Store) lruFor(e *entry) *list {
	if e.n < s.protected {
		return &s.lruProt
	}
	return &s.lru
}

// waitLocked releases mu until ch is closed, ctx ends or the cache closes,
// and takes it again.
func (s *Store) waitLocked(ctx context.Context, ch <-chan struct{}) error {
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return ErrClosed
	}
}

// waitSpaceLocked waits until a slot or dirty budget may have freed up,
// pressing the workers to write back meanwhile.
func (s *Store) waitSpaceLocked(ctx context.Context) error {
	s.spaceWaiters++
	s.kickLocked()
	err := s.waitLocked(ctx, s.spaceCh)
	s.spaceWaiters--
	return err
}

// spaceFreedLocked wakes those waiting for a slot or dirty budget, and a
// worker if loads wait for a slot.
func (s *Store) spaceFreedLocked() {
	if s.spaceWaiters > 0 {
		close(s.spaceCh)
		s.spaceCh = make(chan struct{})
	}
	if s.pfN > 0 || s.readAheadWantedLocked() {
		s.kickLocked()
	}
}

// allocSlotLocked returns a free slot, evicting the least recently used
// unpinned clean block (unprotected ones first) if needed. For a
// speculative load (spec), blocks loaded speculatively and not read yet
// are not evicted: read-ahead must not chase its own tail.
func (s *Store) allocSlotLocked(spec bool) (int, bool) {
	if k := len(s.free); k > 0 {
		slot := s.free[k-1]
		s.free = s.free[:k-1]
		return slot, true
	}
	if e := s.evictableLocked(spec); e != nil {
		s.evictLocked(e)
		return s.allocSlotLocked(spec)
	}
	return -1, false
}

// evictableLocked returns the clean block to evict next, or nil.
func (s *Store) evictableLocked(spec bool) *entry {
	for _, l := range [2]*list{&s.lru, &s.lruProt} {
		for e := l.back(); e != nil; e = l.before(e) {
			if e.pins == 0 && !(spec && e.spec) {
				return e
			}
		}
	}
	return nil
}

// slotAvailableLocked says whether allocSlotLocked would succeed.
func (s *Store) slotAvailableLocked(spec bool) bool {
	return len(s.free) > 0 || s.evictableLocked(spec) != nil
}

// evictLocked drops a clean unpinned block from the cache.
func (s *Store) evictLocked(e *entry) {
	s.lruFor(e).remove(e)
	s.removeLocked(e)
}

// removeLocked takes e out of the map; its slot is freed now, or by the
// last unpin.
func (s *Store) removeLocked(e *entry) {
	delete(s.entries, e.n)
	e.dead = true
	if e.pins == 0 {
		s.freeSlotLocked(e)
	}
}

func (s *Store) freeSlotLocked(e *entry) {
	s.slots.Free(e.slot)
	s.free = append(s.free, e.slot)
	e.slot = -1
	s.spaceFreedLocked()
}

func (s *Store) unpinLocked(e *entry) {
	e.pins--
	if e.pins > 0 {
		return
	}
	switch {
	case e.dead:
		if e.slot >= 0 {
			s.freeSlotLocked(e)
		}
	case e.state == stClean:
		s.spaceFreedLocked()
		if s.timeout > 0 {
			s.scheduleLocked(e.at + s.timeout)
		}
	}
}

// Flush returns once every write acknowledged before it was called is
// stored below (and the store below is flushed), or with the error of the
// first upload of such a write that failed; failed blocks stay dirty and
// are retried.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.flushEntries(ctx, nil); err != nil {
		return err
	}
	return s.lower.Flush(ctx)
}

// FlushBlocks is Flush for the given blocks only (a FUA write of a range).
func (s *Store) FlushBlocks(ctx context.Context, blocks []uint64) error {
	for _, n := range blocks {
		if err := blockstore.CheckBlock(s, n, nil); err != nil {
			return err
		}
	}
	if blocks == nil {
		blocks = []uint64{}
	}
	if err := s.flushEntries(ctx, blocks); err != nil {
		return err
	}
	return s.lower.Flush(ctx)
}

// Close writes back every dirty block (one attempt for those that fail),
// stops the workers and closes the store below. Blocks that could not be
// written back are lost, and said so in the error.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closeOK {
		return s.closeE
	}
	s.closeOK = true
	ferr := s.flushEntries(context.Background(), nil)
	s.mu.Lock()
	s.closed = true
	lost := s.dirty
	s.work.Broadcast()
	s.mu.Unlock()
	close(s.quit)
	s.cancel() // only retries of failed blocks can still be under way
	s.wg.Wait()
	var err error
	if ferr != nil {
		s.log.Error("block cache closed with blocks not written back", "blocks", lost, "err", ferr)
		err = fmt.Errorf("block cache: %d blocks not written back: %w", lost, ferr)
	}
	s.closeE = errors.Join(err, s.slots.Close(), s.lower.Close())
	return s.closeE
}
