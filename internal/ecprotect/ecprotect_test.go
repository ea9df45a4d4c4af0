package ecprotect

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
)

var bg = context.Background()

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name  string
		lower func(bs int, n uint64) blockstore.Store
		opt   Options
	}{
		// A table smaller than the disk with short real times: the
		// suite's writes wait for room and for the write delay.
		{"memstore", func(bs int, n uint64) blockstore.Store { return memstore.New(bs, n) },
			Options{Size: 8, Time: 20 * time.Millisecond, MinWriteDelay: time.Millisecond}},
		{"forever", func(bs int, n uint64) blockstore.Store { return memstore.New(bs, n) },
			Options{Size: 1 << 20}},
		{"bulk", func(bs int, n uint64) blockstore.Store { return bulkLaggy{newLaggy(bs, n, 0)} },
			Options{Size: 16, Time: 10 * time.Millisecond, MinWriteDelay: time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			storetest.Run(t, storetest.Harness{
				New: func(t *testing.T, bs int, n uint64) blockstore.Store {
					return mustNew(t, c.lower(bs, n), c.opt)
				},
				Reopen: func(t *testing.T, s blockstore.Store) blockstore.Store {
					e := s.(*Store)
					if err := e.Close(); err != nil {
						t.Fatal(err)
					}
					return mustNew(t, e.lower, c.opt)
				},
			})
		})
	}
}

func mustNew(t *testing.T, lower blockstore.Store, opt Options) *Store {
	t.Helper()
	s, err := New(lower, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOptionErrors(t *testing.T) {
	l := memstore.New(512, 100)
	for _, opt := range []Options{
		{},
		{Size: -1},
		{Size: 10, Time: time.Second, MinWriteDelay: 2 * time.Second},
		{Size: 10},                      // never expires, cannot cover 100 blocks
		{Size: 10, MinWriteDelay: -1},   // negative
		{Size: 100, Time: -time.Second}, // negative
	} {
		if _, err := New(l, opt); err == nil {
			t.Errorf("%+v: no error", opt)
		}
	}
	s := mustNew(t, l, Options{Size: 1000, Time: time.Second})
	if s.opt.Size != 100 {
		t.Errorf("size %d, want it reduced to the 100 blocks", s.opt.Size)
	}
}

func pattern(size int, seed byte) []byte {
	b := bytes.Repeat([]byte{seed}, size)
	b[0] = seed | 1
	return b
}

func read(t *testing.T, s blockstore.Store, n uint64) []byte {
	t.Helper()
	buf := bytes.Repeat([]byte{0xee}, s.BlockSize())
	if err := s.ReadBlock(bg, n, buf); err != nil {
		t.Fatalf("read block %d: %v", n, err)
	}
	return buf
}

func write(t *testing.T, s blockstore.Store, n uint64, data []byte) {
	t.Helper()
	if err := s.WriteBlock(bg, n, data); err != nil {
		t.Fatalf("write block %d: %v", n, err)
	}
}

// TestStaleReadsRetried: over a store that serves the previous version of
// a block for 3 s after a write, a read right after a write retries until
// the new version shows, and never returns the old one; without the layer
// the same store returns stale data.
func TestStaleReadsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lag = 3 * time.Second
		l := newLaggy(512, 8, lag)
		s := mustNew(t, l, Options{Size: 8, Time: 10 * time.Second, MinWriteDelay: time.Second})
		defer s.Close()

		// The store really is stale.
		write(t, l, 7, pattern(512, 7))
		if !blockstore.IsZero(read(t, l, 7)) {
			t.Fatal("the laggy store is not stale")
		}

		// A new block: absent below for 3 s.
		start := time.Now()
		write(t, s, 1, pattern(512, 1))
		if !bytes.Equal(read(t, s, 1), pattern(512, 1)) {
			t.Fatal("read returned stale data for a new block")
		}
		// Pauses of 200, 400, 800, 1600 ms: the fifth read, at 3 s, sees it.
		if waited := time.Since(start); waited != lag {
			t.Fatalf("read took %v, want %v (retries until the write shows)", waited, lag)
		}
		if st := s.Stats(); st.StaleReads != 4 || st.Verified != 1 || st.GiveUps != 0 {
			t.Fatalf("stats %+v: want 4 stale reads of 1 verified", st)
		}

		// An overwrite, after the minimum delay: old data for 3 s.
		time.Sleep(time.Second)
		write(t, s, 1, pattern(512, 2))
		if !bytes.Equal(read(t, s, 1), pattern(512, 2)) {
			t.Fatal("read returned the old version of an overwritten block")
		}

		// Once the write shows, a read needs no retry.
		time.Sleep(lag)
		reads := l.reads.Load()
		if !bytes.Equal(read(t, s, 1), pattern(512, 2)) || l.reads.Load() != reads+1 {
			t.Fatal("a settled block was not read once")
		}
	})
}

// TestStaleReadGivesUp: a store that stays stale longer than the retry
// budget makes the read fail with an I/O error, not return old data.
func TestStaleReadGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLaggy(512, 8, time.Minute)
		s := mustNew(t, l, Options{Size: 8, Time: 10 * time.Minute,
			InitialRetryPause: 100 * time.Millisecond, MaxRetryPause: time.Second})
		defer s.Close()
		write(t, s, 2, pattern(512, 2))
		start := time.Now()
		err := s.ReadBlock(bg, 2, make([]byte, 512))
		if !errors.Is(err, ErrStale) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("read: %v, want ErrStale (EIO)", err)
		}
		// 100 + 200 + 400 + 300 (the rest of the budget) ms.
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("gave up after %v, want the 1 s budget", waited)
		}
		if st := s.Stats(); st.GiveUps != 1 || st.StaleReads != 5 {
			t.Fatalf("stats %+v: want 5 stale reads, 1 give-up", st)
		}

		// A canceled context stops the retries at once.
		ctx, cancel := context.WithTimeout(bg, 250*time.Millisecond)
		defer cancel()
		start = time.Now()
		if err := s.ReadBlock(ctx, 2, make([]byte, 512)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read under a deadline: %v", err)
		}
		if waited := time.Since(start); waited != 250*time.Millisecond {
			t.Fatalf("read under a 250ms deadline took %v", waited)
		}
	})
}

// TestZeroedBlockReadsZero: a block written as zero (deleted) reads as
// zero without a request, though the store below still serves the old
// data; after the MD5 cache time it is read below again.
func TestZeroedBlockReadsZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLaggy(512, 8, 3*time.Second)
		s := mustNew(t, bulkLaggy{l}, Options{Size: 8, Time: 5 * time.Second})
		defer s.Close()
		write(t, l, 3, pattern(512, 3))
		time.Sleep(3 * time.Second) // visible below
		write(t, s, 3, nil)
		if !blockstore.IsZero(read(t, s, 3)) {
			t.Fatal("a zeroed block read as its old data")
		}
		if r := l.reads.Load(); r != 0 {
			t.Fatalf("%d reads below, want none", r)
		}
		if p, err := (bulkLaggy{l}).Presence(bg, 3); err != nil || p != blockstore.Present {
			t.Fatalf("presence below %v, %v; want Present (stale)", p, err)
		}
		if p, err := s.Presence(bg, 3); err != nil || p != blockstore.Absent {
			t.Fatalf("presence %v, %v; want Absent", p, err)
		}
		time.Sleep(5 * time.Second)
		read(t, s, 3)
		if r := l.reads.Load(); r != 1 {
			t.Fatalf("%d reads below after the cache time, want 1", r)
		}
		if st := s.Stats(); st.Entries != 0 || st.ZeroHits != 1 {
			t.Fatalf("stats %+v: want the entry expired, 1 zero hit", st)
		}
	})
}

// TestMinWriteDelay: the next write of a block starts MinWriteDelay after
// the last one ended; writes of other blocks do not wait; a write that
// cannot wait (context) fails without reaching the store below.
func TestMinWriteDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLaggy(512, 8, 0)
		s := mustNew(t, l, Options{Size: 8, Time: 10 * time.Second, MinWriteDelay: 2 * time.Second})
		defer s.Close()
		t0 := time.Now()
		write(t, s, 0, pattern(512, 1))
		write(t, s, 1, pattern(512, 1))
		write(t, s, 0, pattern(512, 2))
		write(t, s, 0, nil)
		if got, want := l.writeStarts(0), []time.Time{t0, t0.Add(2 * time.Second), t0.Add(4 * time.Second)}; !slices.Equal(got, want) {
			t.Fatalf("block 0 written at %v, want %v", got, want)
		}
		if got := l.writeStarts(1); !slices.Equal(got, []time.Time{t0}) {
			t.Fatalf("block 1 written at %v, want at once", got)
		}
		if st := s.Stats(); st.WriteWait != 4*time.Second {
			t.Fatalf("write wait %v, want 4s", st.WriteWait)
		}

		ctx, cancel := context.WithTimeout(bg, time.Second)
		defer cancel()
		if err := s.WriteBlock(ctx, 0, pattern(512, 3)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write under a short deadline: %v", err)
		}
		if n := len(l.writeStarts(0)); n != 3 {
			t.Fatalf("%d writes of block 0 below, want 3 (the canceled one must not go)", n)
		}
		// Close wakes a waiting writer.
		errc := make(chan error)
		go func() { errc <- s.WriteBlock(bg, 0, pattern(512, 4)) }()
		synctest.Wait()
		s.Close()
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("write waiting at close: %v, want ErrClosed", err)
		}
	})
}

// TestFullTable: with room for two blocks, a write of a third waits until
// the oldest entry expires; rewriting a remembered block needs no room;
// the wait gives up with its context.
func TestFullTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLaggy(512, 8, 0)
		s := mustNew(t, l, Options{Size: 2, Time: 10 * time.Second})
		defer s.Close()
		t0 := time.Now()
		write(t, s, 0, pattern(512, 1))
		time.Sleep(time.Second)
		write(t, s, 1, pattern(512, 1))
		write(t, s, 1, pattern(512, 2)) // remembered already: no wait

		ctx, cancel := context.WithTimeout(bg, 5*time.Second)
		defer cancel()
		if err := s.WriteBlock(ctx, 2, pattern(512, 2)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write into a full table under a short deadline: %v", err)
		}
		if l.writes.Load() != 3 {
			t.Fatal("the canceled write went below")
		}
		write(t, s, 2, pattern(512, 2))
		// Block 0's entry expires 10 s after its write.
		if got := l.writeStarts(2); !slices.Equal(got, []time.Time{t0.Add(10 * time.Second)}) {
			t.Fatalf("block 2 written at %v, want at %v", got, t0.Add(10*time.Second))
		}
		if st := s.Stats(); st.Entries != 2 || st.FullWait != 9*time.Second {
			t.Fatalf("stats %+v: want 2 entries, 9 s waiting for room (5 s canceled + 4 s)", st)
		}
	})
}

// TestFullTableAllWriting: when every entry is being written there is
// nothing to expire; a write waiting for room proceeds once one of them
// ends and then expires.
func TestFullTableAllWriting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &gated{laggy: newLaggy(512, 8, 0), gate: make(chan struct{})}
		s := mustNew(t, l, Options{Size: 1, Time: time.Second})
		defer s.Close()
		var wg sync.WaitGroup
		wg.Go(func() { write(t, s, 0, pattern(512, 1)) })
		synctest.Wait() // block 0 is being written, held at the gate
		wg.Go(func() { write(t, s, 1, pattern(512, 1)) })
		synctest.Wait()
		if n := l.entered.Load(); n != 1 {
			t.Errorf("%d writes below, want 1: a write went below with the table full", n)
		}
		t0 := time.Now()
		time.Sleep(3 * time.Second)
		close(l.gate)
		wg.Wait()
		if got := l.writeStarts(1); !slices.Equal(got, []time.Time{t0.Add(4 * time.Second)}) {
			t.Fatalf("block 1 written at %v, want 1 s after block 0's write ended", got)
		}
	})
}

// gated holds every write until gate is closed.
type gated struct {
	*laggy
	gate    chan struct{}
	entered atomic.Int64
}

func (g *gated) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	g.entered.Add(1)
	<-g.gate
	return g.laggy.WriteBlock(ctx, n, data)
}

// TestFailedWrite: after a failed write (which may have landed) a read
// waits MinWriteDelay, then reads without a check; a read during a write
// waits for it and checks against it.
func TestFailedWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLaggy(512, 8, 0)
		s := mustNew(t, l, Options{Size: 8, Time: 10 * time.Second, MinWriteDelay: time.Second})
		defer s.Close()
		boom := errors.New("lost reply")
		l.setFailNext(boom)
		if err := s.WriteBlock(bg, 4, pattern(512, 4)); !errors.Is(err, boom) {
			t.Fatalf("write: %v, want the injected error", err)
		}
		if p, err := s.Presence(bg, 4); err != nil || p != blockstore.Unknown {
			t.Fatalf("presence after a failed write %v, %v; want Unknown", p, err)
		}
		start := time.Now()
		if !bytes.Equal(read(t, s, 4), pattern(512, 4)) {
			t.Fatal("the failed write's data (which landed) not read")
		}
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("read after a failed write waited %v, want 1s", waited)
		}
		if st := s.Stats(); st.Verified != 0 || st.Entries != 0 {
			t.Fatalf("stats %+v: want the entry forgotten, no check", st)
		}
	})
}

// TestReadDuringWrite: a read of a block being written waits for the
// write and returns its data.
func TestReadDuringWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &gated{laggy: newLaggy(512, 8, time.Second), gate: make(chan struct{})}
		s := mustNew(t, l, Options{Size: 8, Time: 10 * time.Second})
		defer s.Close()
		var wg sync.WaitGroup
		wg.Go(func() { write(t, s, 5, pattern(512, 5)) })
		synctest.Wait()
		got := make(chan []byte)
		go func() { got <- read(t, s, 5) }()
		synctest.Wait()
		if l.reads.Load() != 0 {
			t.Fatal("read went below during the write")
		}
		close(l.gate)
		if !bytes.Equal(<-got, pattern(512, 5)) {
			t.Fatal("read during a write returned other data")
		}
		wg.Wait()
	})
}

// TestBulkZero: blocks that may be written now are zeroed in one bulk
// call below; one written too recently follows alone after its delay.
func TestBulkZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLaggy(512, 16, 0)
		b := bulkLaggy{l}
		s := mustNew(t, b, Options{Size: 16, Time: 10 * time.Second, MinWriteDelay: 2 * time.Second})
		defer s.Close()
		t0 := time.Now()
		write(t, s, 3, pattern(512, 3))
		if err := s.ZeroBlocks(bg, []uint64{1, 2, 3, 4}); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		bulk := slices.Clone(l.bulk)
		l.mu.Unlock()
		if len(bulk) != 1 || !slices.Equal(bulk[0], []uint64{1, 2, 4}) {
			t.Fatalf("bulk calls %v, want [[1 2 4]]", bulk)
		}
		if got := l.writeStarts(3); !slices.Equal(got, []time.Time{t0, t0.Add(2 * time.Second)}) {
			t.Fatalf("block 3 written at %v, want its zeroing 2s after its write", got)
		}
		for _, n := range []uint64{1, 2, 3, 4} {
			if p, err := s.Presence(bg, n); err != nil || p != blockstore.Absent {
				t.Fatalf("block %d: presence %v, %v; want Absent", n, p, err)
			}
		}
		// Not remembered: the store below answers.
		write(t, l, 9, pattern(512, 9))
		if p, err := s.Presence(bg, 9); err != nil || p != blockstore.Present {
			t.Fatalf("block 9: presence %v, %v; want the store below's answer", p, err)
		}
	})
}

// TestBulkZeroWithoutBulkBelow: block by block, each with its own delay.
func TestBulkZeroWithoutBulkBelow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLaggy(512, 16, 0)
		s := mustNew(t, l, Options{Size: 16, Time: 10 * time.Second, MinWriteDelay: time.Second})
		defer s.Close()
		t0 := time.Now()
		write(t, s, 1, pattern(512, 1))
		if err := s.ZeroBlocks(bg, []uint64{0, 1}); err != nil {
			t.Fatal(err)
		}
		if got := l.writeStarts(0); !slices.Equal(got, []time.Time{t0}) {
			t.Fatalf("block 0 zeroed at %v, want at once", got)
		}
		if got := l.writeStarts(1); !slices.Equal(got, []time.Time{t0, t0.Add(time.Second)}) {
			t.Fatalf("block 1 written at %v", got)
		}
		if err := s.ZeroBlocks(bg, []uint64{16}); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("zeroing a block out of range: %v", err)
		}
	})
}

// TestSurvey: remembered blocks holding data are reported (a listing may
// not show them yet), as are blocks written while the listing runs.
func TestSurvey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLaggy(512, 16, 0)
		s := mustNew(t, &surveyHook{bulkLaggy: bulkLaggy{l}}, Options{Size: 16, Time: 10 * time.Second})
		defer s.Close()
		write(t, l, 9, pattern(512, 9)) // stored, not through the layer
		write(t, s, 1, pattern(512, 1))
		write(t, s, 2, nil)
		hook := s.lower.(*surveyHook)
		hook.during = func() { write(t, s, 5, pattern(512, 5)); write(t, s, 6, nil) }
		var mu sync.Mutex
		var got []uint64
		if err := s.Survey(bg, func(n uint64) { mu.Lock(); got = append(got, n); mu.Unlock() }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		got = slices.Compact(got)
		if want := []uint64{1, 5, 9}; !slices.Equal(got, want) {
			t.Fatalf("survey reported %v, want %v", got, want)
		}
		if len(s.surveys) != 0 {
			t.Fatal("survey callback still registered")
		}
		if err := mustNew(t, l, Options{Size: 16, Time: time.Second}).Survey(bg, func(uint64) {}); !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("survey without a surveyor below: %v", err)
		}
	})
}

// surveyHook runs during while listing (before it, so the listing shows
// what it wrote only through the layer's own reports).
type surveyHook struct {
	bulkLaggy
	during func()
}

func (h *surveyHook) Survey(ctx context.Context, fn func(uint64)) error {
	stored := h.stored()
	if h.during != nil {
		h.during()
	}
	for _, n := range stored {
		fn(n)
	}
	return nil
}

// TestRandomOverLaggyStore: writers, each owning blocks, write and read
// them back at random moments over a store 2 s stale, through a table
// smaller than the disk: every read returns the last data written.
func TestRandomOverLaggyStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLaggy(64, 8, 2*time.Second)
		s := mustNew(t, l, Options{Size: 4, Time: 5 * time.Second, MinWriteDelay: 500 * time.Millisecond})
		defer s.Close()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				last := map[uint64][]byte{}
				for i := range 60 {
					n := uint64(2*w + rng.IntN(2))
					time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
					if rng.IntN(2) == 0 {
						var data []byte // a zero write, one time in four
						if rng.IntN(4) != 0 {
							data = pattern(64, byte(i))
						}
						if err := s.WriteBlock(bg, n, data); err != nil {
							t.Errorf("write %d: %v", n, err)
							return
						}
						last[n] = data
						continue
					}
					buf := make([]byte, 64)
					if err := s.ReadBlock(bg, n, buf); err != nil {
						t.Errorf("read %d: %v", n, err)
						return
					}
					want := last[n]
					if want == nil {
						want = make([]byte, 64)
					}
					if !bytes.Equal(buf, want) {
						t.Errorf("writer %d, op %d: block %d is not what was last written", w, i, n)
						return
					}
				}
			})
		}
		wg.Wait()
		st := s.Stats()
		if st.StaleReads == 0 || st.FullWait == 0 || st.WriteWait == 0 {
			t.Errorf("stats %+v: the test did not exercise stale reads, a full table and write delays", st)
		}
	})
}

// Over a Tagger, Tagged passes tags through; a conditional read goes below
// only for a block the layer remembers nothing of.
func TestTagged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		plain := mustNew(t, newLaggy(512, 8, 0), Options{Size: 8, Time: 5 * time.Second})
		defer plain.Close()
		if _, ok := plain.Tagged().(blockstore.Tagger); ok {
			t.Fatal("Tagged over a store without tags offers tags")
		}
		l := taggedLaggy{newLaggy(512, 8, 0), new(atomic.Int64)}
		ec := mustNew(t, l, Options{Size: 8, Time: 5 * time.Second})
		defer ec.Close()
		s, ok := ec.Tagged().(blockstore.Tagger)
		if !ok {
			t.Fatal("Tagged over a Tagger offers no tags")
		}
		tag, err := s.WriteBlockTag(bg, 1, pattern(512, 1))
		if err != nil || tag != "v0" {
			t.Fatalf("write: tag %q, %v", tag, err)
		}
		buf := make([]byte, 512)
		if tag, err := s.ReadBlockTag(bg, 1, buf); err != nil || tag != "v0" || !bytes.Equal(buf, pattern(512, 1)) {
			t.Fatalf("read: tag %q, %v", tag, err)
		}
		// Remembered: read whole and checked, reported changed.
		changed, tag, err := s.ReadBlockIfChanged(bg, 1, "v0", buf)
		if err != nil || !changed || tag != "v0" || l.conditional.Load() != 0 {
			t.Fatalf("conditional read of a remembered block: %v %q %v, %d below", changed, tag, err, l.conditional.Load())
		}
		// Forgotten: asked below.
		time.Sleep(6 * time.Second)
		changed, _, err = s.ReadBlockIfChanged(bg, 1, "v0", buf)
		if err != nil || changed || l.conditional.Load() != 1 {
			t.Fatalf("conditional read of a forgotten block: %v %v, %d below", changed, err, l.conditional.Load())
		}
		// A zero block has no tag and is not read below.
		if tag, err := s.WriteBlockTag(bg, 2, nil); err != nil || tag != "" {
			t.Fatalf("zero write: tag %q, %v", tag, err)
		}
		reads := l.reads.Load()
		if tag, err := s.ReadBlockTag(bg, 2, buf); err != nil || tag != "" || !blockstore.IsZero(buf) || l.reads.Load() != reads {
			t.Fatalf("zeroed block: tag %q, %v, %d reads below", tag, err, l.reads.Load()-reads)
		}
	})
}
