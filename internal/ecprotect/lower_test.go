package ecprotect

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// laggy is an eventually consistent store, as S3 was: a write is visible
// to reads only lag after it ended; until then reads return the version
// before (zeroes for a block never written). It records when each write
// started, and counts calls. Safe for concurrent use; uses the fake clock
// inside a synctest bubble.
type laggy struct {
	bs  int
	n   uint64
	lag time.Duration

	mu       sync.Mutex
	versions map[uint64][]version
	starts   map[uint64][]time.Time // when each write of a block began
	bulk     [][]uint64             // the blocks of each ZeroBlocks call
	failNext error                  // the next write fails with it, after landing

	reads, writes atomic.Int64
}

type version struct {
	at   time.Time
	data []byte // nil: zero
}

func newLaggy(bs int, n uint64, lag time.Duration) *laggy {
	return &laggy{bs: bs, n: n, lag: lag, versions: map[uint64][]version{}, starts: map[uint64][]time.Time{}}
}

func (l *laggy) BlockSize() int              { return l.bs }
func (l *laggy) NumBlocks() uint64           { return l.n }
func (l *laggy) Flush(context.Context) error { return nil }
func (l *laggy) Close() error                { return nil }
func (l *laggy) setFailNext(err error)       { l.mu.Lock(); l.failNext = err; l.mu.Unlock() }
func (l *laggy) writeStarts(n uint64) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.starts[n])
}

func (l *laggy) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	if err := blockstore.CheckBlock(l, n, buf); err != nil {
		return err
	}
	l.reads.Add(1)
	l.visible(n, buf)
	return nil
}

// visible fills buf with the version of block n that reads see now, and
// returns its tag ("": none, or zero).
func (l *laggy) visible(n uint64, buf []byte) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(buf)
	visible := time.Now().Add(-l.lag)
	vs := l.versions[n]
	for i := len(vs) - 1; i >= 0; i-- {
		if !vs[i].at.After(visible) {
			copy(buf, vs[i].data)
			return versionTag(vs[i], i)
		}
	}
	return ""
}

// versionTag is the tag of the i-th version of a block: "vI", or "" for a
// zero block (not stored).
func versionTag(v version, i int) string {
	if v.data == nil {
		return ""
	}
	return fmt.Sprintf("v%d", i)
}

func (l *laggy) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	if err := blockstore.CheckBlock(l, n, data); err != nil {
		return err
	}
	l.writes.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts[n] = append(l.starts[n], time.Now())
	l.put(n, data)
	err := l.failNext
	l.failNext = nil
	return err
}

func (l *laggy) put(n uint64, data []byte) {
	v := version{at: time.Now()}
	if data != nil && !blockstore.IsZero(data) {
		v.data = slices.Clone(data)
	}
	l.versions[n] = append(l.versions[n], v)
}

// stored reports the blocks whose latest version holds data, as a listing
// that is not lagging would.
func (l *laggy) stored() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []uint64
	for n, vs := range l.versions {
		if vs[len(vs)-1].data != nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// bulkLaggy adds ZeroBlocks and Survey (listing without lag).
type bulkLaggy struct{ *laggy }

func (b bulkLaggy) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bulk = append(b.bulk, slices.Clone(blocks))
	for _, n := range blocks {
		b.starts[n] = append(b.starts[n], time.Now())
		b.put(n, nil)
	}
	return nil
}

func (b bulkLaggy) Survey(ctx context.Context, fn func(uint64)) error {
	for _, n := range b.stored() {
		fn(n)
	}
	return nil
}

// Presence lags as reads do.
func (b bulkLaggy) Presence(ctx context.Context, n uint64) (blockstore.Presence, error) {
	if err := blockstore.CheckBlock(b, n, nil); err != nil {
		return blockstore.Unknown, err
	}
	buf := make([]byte, b.bs)
	b.visible(n, buf)
	if blockstore.IsZero(buf) {
		return blockstore.Absent, nil
	}
	return blockstore.Present, nil
}

var (
	_ blockstore.BulkZeroer = bulkLaggy{}
	_ blockstore.Surveyor   = bulkLaggy{}
	_ blockstore.Prober     = bulkLaggy{}
)

// taggedLaggy adds tags (blockstore.Tagger), the version numbers, lagging
// as the data does; it counts conditional reads apart.
type taggedLaggy struct {
	*laggy
	conditional *atomic.Int64
}

func (l taggedLaggy) ReadBlockTag(ctx context.Context, n uint64, buf []byte) (string, error) {
	if err := blockstore.CheckBlock(l, n, buf); err != nil {
		return "", err
	}
	l.reads.Add(1)
	return l.visible(n, buf), nil
}

func (l taggedLaggy) WriteBlockTag(ctx context.Context, n uint64, data []byte) (string, error) {
	if err := l.WriteBlock(ctx, n, data); err != nil {
		return "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	vs := l.versions[n]
	return versionTag(vs[len(vs)-1], len(vs)-1), nil
}

func (l taggedLaggy) ReadBlockIfChanged(ctx context.Context, n uint64, tag string, buf []byte) (bool, string, error) {
	if err := blockstore.CheckBlock(l, n, buf); err != nil {
		return false, "", err
	}
	l.conditional.Add(1)
	tmp := make([]byte, len(buf))
	now := l.visible(n, tmp)
	if now == tag {
		return false, tag, nil
	}
	copy(buf, tmp)
	return true, now, nil
}
