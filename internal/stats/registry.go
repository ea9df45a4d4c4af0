// Package stats is the one place s3backer-go counts: object-store requests
// (fed by the metered backend), NBD requests and connections (the NBD
// server's observer), and the counters the layers keep themselves (block
// cache, known-zero blocks, retries), read when asked.
//
// Everything that shows statistics reads a Registry: the FUSE stats file
// and --statsFileMirror through Text (s3backer's stats-file format, under
// s3backer's names where the meaning is the same), and --metricsListen
// through Collector. Reset, which removing the stats file triggers, moves
// a baseline that Text subtracts; the Prometheus counters never go back,
// as Prometheus expects.
package stats

import (
	"sync"

	"github.com/s3backer-go/s3backer/internal/backend/retry"
	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/zero"
)

// Sources are the layers' own counters, read on demand. A nil func means
// the layer is not in the stack, and its lines are left out, as s3backer
// leaves out the lines of layers it did not stack.
type Sources struct {
	Cache func() cache.Stats
	Zero  func() zero.Stats
	Retry func() retry.Stats
}

// Line is one "name value" line of the stats text, for layers this
// package does not know (Extra).
type Line struct{ Name, Value string }

// Registry holds the counters of one open disk. The zero value is not
// usable; call New.
type Registry struct {
	S3  S3
	NBD NBD

	mu         sync.Mutex
	src        Sources
	extra      []func() []Line
	base       Snapshot
	listBlocks bool
}

// New returns an empty registry.
func New() *Registry { return &Registry{} }

// Watch sets the layers' counters to read (each call replaces the
// non-nil funcs given).
func (r *Registry) Watch(s Sources) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.Cache != nil {
		r.src.Cache = s.Cache
	}
	if s.Zero != nil {
		r.src.Zero = s.Zero
	}
	if s.Retry != nil {
		r.src.Retry = s.Retry
	}
}

// Extra adds lines from a layer this package does not know (the MD5
// cache, say) at the end of the stats text. They are shown as given:
// Reset does not touch them.
func (r *Registry) Extra(f func() []Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.extra = append(r.extra, f)
}

// SetListBlocks says that --listBlocks is on, which adds s3backer's
// http_empty_blocks_* lines.
func (r *Registry) SetListBlocks(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listBlocks = on
}

// Snapshot is every counter at one moment.
type Snapshot struct {
	S3  S3Snapshot
	NBD NBDSnapshot

	HasRetry bool
	Retry    retry.Stats
	HasCache bool
	Cache    cache.Stats
	HasZero  bool
	Zero     zero.Stats

	ListBlocks bool
	Extra      []Line
}

// Snapshot returns the counters since the registry was made (Reset does
// not change it: this is what Prometheus reads).
func (r *Registry) Snapshot() Snapshot {
	r.mu.Lock()
	src, extra, lb := r.src, r.extra, r.listBlocks
	r.mu.Unlock()
	s := Snapshot{S3: r.S3.snapshot(), NBD: r.NBD.snapshot(), ListBlocks: lb}
	if src.Retry != nil {
		s.HasRetry, s.Retry = true, src.Retry()
	}
	if src.Cache != nil {
		s.HasCache, s.Cache = true, src.Cache()
	}
	if src.Zero != nil {
		s.HasZero, s.Zero = true, src.Zero()
	}
	for _, f := range extra {
		s.Extra = append(s.Extra, f()...)
	}
	return s
}

// sinceReset is the snapshot with the counters (not the gauges) counted
// from the last Reset.
func (r *Registry) sinceReset() Snapshot {
	s := r.Snapshot()
	r.mu.Lock()
	b := r.base
	r.mu.Unlock()
	return s.sub(b)
}

// Reset starts the counters shown by Text over from zero (gauges such as
// the cache's current size keep their value).
func (r *Registry) Reset() {
	s := r.Snapshot()
	r.mu.Lock()
	r.base = s
	r.mu.Unlock()
}

func (s Snapshot) sub(b Snapshot) Snapshot {
	s.S3 = s.S3.sub(b.S3)
	s.NBD = s.NBD.sub(b.NBD)
	if s.HasRetry && b.HasRetry {
		s.Retry.Attempts -= b.Retry.Attempts
		s.Retry.Retries -= b.Retry.Retries
		s.Retry.RetryDelay -= b.Retry.RetryDelay
		s.Retry.GiveUps -= b.Retry.GiveUps
	}
	if s.HasCache && b.HasCache {
		c, o := &s.Cache, b.Cache
		c.ReadHits -= o.ReadHits
		c.ReadMisses -= o.ReadMisses
		c.WriteHits -= o.WriteHits
		c.WriteMisses -= o.WriteMisses
		c.ReadAheads -= o.ReadAheads
		c.Prefetches -= o.Prefetches
		c.Uploads -= o.Uploads
		c.UploadErrors -= o.UploadErrors
		c.Expired -= o.Expired
		c.Verified -= o.Verified
		c.Mismatch -= o.Mismatch
	}
	if s.HasZero && b.HasZero {
		s.Zero.ZeroReads -= b.Zero.ZeroReads
		s.Zero.DroppedWrites -= b.Zero.DroppedWrites
	}
	return s
}
