// Package ecprotect is the eventual-consistency protection layer
// (s3backer's "MD5 cache": --md5CacheSize, --md5CacheTime,
// --minWriteDelay), for object stores that may serve an old version of an
// object for a while after it was overwritten or deleted. Off by default,
// as in s3backer 2.x; stacked directly above the codec, below the block
// cache.
//
// For every block written, the layer remembers for Options.Time what was
// written: a hash of the data, or "zero" for a zero block (deleted
// object), or "unknown" if the write failed and may or may not have
// landed. Then:
//
//   - a read of a block remembered as zero is answered with zeroes, with no
//     request (what the disk holds is known; a stale GET could only be wrong);
//   - a read of a block remembered by hash is read below and checked: data
//     that does not match what was written is stale, and the read is
//     retried, with pauses from Options.InitialRetryPause doubling until
//     they add up to Options.MaxRetryPause (--initialRetryPause,
//     --maxRetryPause, as s3backer's HTTP layer retries its failed
//     If-Match GETs). If it is still stale then, the read fails with
//     ErrStale (an EIO): stale data is never returned as current. A block
//     that reads as absent counts as stale too (s3backer 2.1 returns
//     zeroes there; a not yet visible new object would lose data);
//   - a read of a block whose write failed waits until Options.MinWriteDelay
//     after that write, then reads without a check (as s3backer);
//   - a read of a block being written waits for that write (s3backer
//     copies the data being written; the block cache above never asks);
//   - two writes of one block are at least Options.MinWriteDelay apart
//     (end of the first to start of the second), so the first has time
//     to propagate before the second;
//   - at most Options.Size blocks are remembered: when the table is full,
//     a write of a block not in it waits until the oldest entry expires
//     (as s3backer; with Time 0, entries never expire and Size must cover
//     the disk). Every wait gives up when its context is done.
//
// s3backer keeps the MD5 of the object (its ETag) and lets S3 compare it
// (If-Match). This layer sits above the codec, so it keeps a 64-bit seeded
// hash (hash/maphash) of the block's plain data instead: it works the
// same whatever the compression or encryption, works on stores without
// ETags (--test), and costs a small fraction of an MD5. A collision, a
// stale block taken for current, has probability 2^-64 per read.
package ecprotect

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// s3backer's retry defaults (--initialRetryPause, --maxRetryPause).
const (
	DefaultInitialRetryPause = 200 * time.Millisecond
	DefaultMaxRetryPause     = 30 * time.Second
)

var (
	// ErrStale is a read that still returned something other than what
	// was last written after all its retries.
	ErrStale = fmt.Errorf("stale data: the store still serves an older version of the block: %w", syscall.EIO)
	// ErrClosed is returned by calls waiting when the store is closed.
	ErrClosed = fmt.Errorf("eventual-consistency layer closed: %w", syscall.ESHUTDOWN)
)

// Options configure a Store.
type Options struct {
	// Size is how many blocks are remembered at most (--md5CacheSize,
	// > 0); reduced to the number of blocks.
	Size int
	// Time is how long a write is remembered after it ends
	// (--md5CacheTime); 0 is forever, and then Size must cover the disk.
	Time time.Duration
	// MinWriteDelay is the least time from the end of a write of a block
	// to the start of the next write of it (--minWriteDelay); at most
	// Time unless Time is 0.
	MinWriteDelay time.Duration
	// InitialRetryPause and MaxRetryPause pace the retries of a stale
	// read (0: s3backer's defaults, 200 ms and 30 s in total).
	InitialRetryPause time.Duration
	MaxRetryPause     time.Duration
	// Logger receives stale reads and a full table; nil discards.
	Logger *slog.Logger
}

// Store is a blockstore.Store, Prober, Surveyor and BulkZeroer; safe for
// concurrent use. The optional interfaces use the store below's when it
// has them (Presence answers Unknown, Survey fails with
// errors.ErrUnsupported, ZeroBlocks zeroes block by block otherwise). A
// PartReader or Prefetcher below is not passed through: a part cannot be
// checked against the hash of its block, and there is no cache below.
type Store struct {
	lower blockstore.Store
	opt   Options
	log   *slog.Logger
	seed  maphash.Seed

	mu      sync.Mutex
	entries map[uint64]*entry
	ended   list          // entries whose write has ended, oldest first
	space   chan struct{} // closed (and replaced) when a write ends or entries expire
	surveys map[int]*surveyor
	nextID  int
	warned  bool // about a full table that never expires

	closeOnce sync.Once
	closed    chan struct{}

	st counters
}

var (
	_ blockstore.Store      = (*Store)(nil)
	_ blockstore.Prober     = (*Store)(nil)
	_ blockstore.Surveyor   = (*Store)(nil)
	_ blockstore.BulkZeroer = (*Store)(nil)
)

// New returns the layer over lower.
func New(lower blockstore.Store, opt Options) (*Store, error) {
	if opt.Size <= 0 {
		return nil, fmt.Errorf("MD5 cache size %d: must be at least 1", opt.Size)
	}
	if opt.Time < 0 || opt.MinWriteDelay < 0 {
		return nil, errors.New("MD5 cache time and minimum write delay cannot be negative")
	}
	if opt.Time > 0 && opt.Time < opt.MinWriteDelay {
		return nil, fmt.Errorf("MD5 cache time %v is shorter than the minimum write delay %v", opt.Time, opt.MinWriteDelay)
	}
	if uint64(opt.Size) > lower.NumBlocks() {
		opt.Size = int(lower.NumBlocks())
	}
	if opt.Time == 0 && uint64(opt.Size) < lower.NumBlocks() {
		return nil, fmt.Errorf("MD5 cache entries never expire but its %d entries cannot cover the %d blocks: writes would deadlock",
			opt.Size, lower.NumBlocks())
	}
	if opt.InitialRetryPause <= 0 {
		opt.InitialRetryPause = DefaultInitialRetryPause
	}
	if opt.MaxRetryPause <= 0 {
		opt.MaxRetryPause = DefaultMaxRetryPause
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{
		lower:   lower,
		opt:     opt,
		log:     log,
		seed:    maphash.MakeSeed(),
		entries: make(map[uint64]*entry),
		space:   make(chan struct{}),
		surveys: make(map[int]*surveyor),
		closed:  make(chan struct{}),
	}, nil
}

func (s *Store) BlockSize() int    { return s.lower.BlockSize() }
func (s *Store) NumBlocks() uint64 { return s.lower.NumBlocks() }

// Flush passes through: this layer holds no data.
func (s *Store) Flush(ctx context.Context) error { return s.lower.Flush(ctx) }

// Close wakes every waiting call (they fail with ErrClosed) and closes the
// store below.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return s.lower.Close()
}

// sum is the hash kept for non-zero data.
func (s *Store) sum(data []byte) uint64 { return maphash.Bytes(s.seed, data) }

// wait releases s.mu until ch is closed, until the time until (if not
// zero), ctx is done or the store is closed, and takes it again. It
// reports how long it waited.
func (s *Store) wait(ctx context.Context, ch <-chan struct{}, until time.Time) (time.Duration, error) {
	s.mu.Unlock()
	defer s.mu.Lock()
	start := time.Now()
	var timeout <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case <-ch:
	case <-timeout:
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.closed:
		err = ErrClosed
	}
	return time.Since(start), err
}

// sleep waits for d unless ctx is done or the store is closed first.
func (s *Store) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return ErrClosed
	}
}

// counters are the layer's statistics.
type counters struct {
	hits, verified, stale, giveUps atomic.Uint64
	fullWait, writeWait            atomic.Int64 // nanoseconds
}

// Stats are the layer's counters, for the stats file and metrics
// (s3backer's md5_cache_* lines).
type Stats struct {
	// Entries is how many blocks are remembered now.
	Entries int
	// ZeroHits counts reads answered with zeroes without a request.
	ZeroHits uint64
	// Verified counts reads checked against what was written.
	Verified uint64
	// StaleReads counts reads below that returned stale data (each is
	// retried); GiveUps the reads that failed with ErrStale.
	StaleReads, GiveUps uint64
	// FullWait is the time writes waited for room in the table,
	// WriteWait the time they waited for MinWriteDelay or another write
	// of the same block.
	FullWait, WriteWait time.Duration
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	n := len(s.entries)
	s.mu.Unlock()
	return Stats{
		Entries:    n,
		ZeroHits:   s.st.hits.Load(),
		Verified:   s.st.verified.Load(),
		StaleReads: s.st.stale.Load(),
		GiveUps:    s.st.giveUps.Load(),
		FullWait:   time.Duration(s.st.fullWait.Load()),
		WriteWait:  time.Duration(s.st.writeWait.Load()),
	}
}
