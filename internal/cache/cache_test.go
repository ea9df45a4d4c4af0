package cache

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
	"github.com/s3backer-go/s3backer/internal/zero"
)

const bs = 512

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name  string
		opt   Options
		plain bool // over a bare memstore
		zero  bool // under the known-zero layer
	}{
		{name: "writeback", opt: Options{Size: 16, Threads: 4, WriteDelay: 20 * time.Millisecond, ReadAhead: 4, ReadAheadTrigger: 2}},
		{name: "writethrough", opt: Options{Size: 16, Threads: 4}},
		{name: "memstore", opt: DefaultOptions(), plain: true},
		{name: "tiny", opt: Options{Size: 2, Threads: 1, WriteDelay: time.Hour, MaxDirty: 1, ReadAhead: 2}},
		{name: "protected+timeout", opt: Options{Size: 4, Threads: 2, WriteDelay: time.Millisecond, NumProtected: 2, Timeout: 5 * time.Millisecond}},
		{name: "under-zero", opt: DefaultOptions(), zero: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			mk := func(t *testing.T, l blockstore.Store) blockstore.Store {
				cs := newCache(t, l, c.opt)
				if c.zero {
					return zero.New(cs, zero.Options{Survey: true})
				}
				return cs
			}
			h := storetest.Harness{
				New: func(t *testing.T, bs int, n uint64) blockstore.Store {
					if c.plain {
						return mk(t, memstore.New(bs, n))
					}
					return mk(t, fullLower{newLower(bs, n)})
				},
			}
			if !c.zero {
				// Closing the cache closes the store below; ours survive
				// that, so a new cache over it must see the flushed data.
				h.Reopen = func(t *testing.T, s blockstore.Store) blockstore.Store {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					return mk(t, s.(*Store).lower)
				}
			}
			storetest.Run(t, h)
		})
	}
}

// A block rewritten 100 times inside the write delay is written below
// once, after the delay, with the last data.
func TestRewritesCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		c := newCache(t, l, Options{Size: 8, Threads: 4, WriteDelay: 250 * time.Millisecond})
		for i := range 100 {
			mustWrite(t, c, 5, pattern(bs, i))
		}
		synctest.Wait()
		if n := l.writes.Load(); n != 0 {
			t.Fatalf("%d writes below before the write delay", n)
		}
		time.Sleep(250 * time.Millisecond)
		synctest.Wait()
		if n := l.writesOfBlock(5); n != 1 {
			t.Fatalf("block written below %d times, want 1", n)
		}
		if !bytes.Equal(l.stored(5), pattern(bs, 99)) {
			t.Fatal("below does not hold the last write")
		}
		st := c.Stats()
		if st.Uploads != 1 || st.WriteHits != 99 || st.WriteMisses != 1 || st.DirtyBlocks != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// With a write delay of 0, WriteBlock returns only once the block is below.
func TestWriteThrough(t *testing.T) {
	for _, opt := range []Options{{Size: 4}, {Size: 4, Sync: true}} {
		synctest.Test(t, func(t *testing.T) {
			l := newLower(bs, 64)
			g := newGate(3)
			l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
				g.pass(n)
				return do()
			}
			c := newCache(t, l, opt)
			var done atomic.Bool
			go func() {
				mustWrite(t, c, 3, pattern(bs, 3))
				done.Store(true)
			}()
			<-g.entered
			synctest.Wait()
			if done.Load() {
				t.Fatal("write-through returned before the block was written below")
			}
			g.release(3)
			synctest.Wait()
			if !done.Load() {
				t.Fatal("write-through did not return once written below")
			}
			if !bytes.Equal(l.stored(3), pattern(bs, 3)) {
				t.Fatal("block not below")
			}
			// Still cached: reading it costs nothing below.
			if !bytes.Equal(mustRead(t, c, 3), pattern(bs, 3)) || l.reads.Load() != 0 {
				t.Fatal("written block not served from the cache")
			}
		})
	}
	if _, err := New(newLower(bs, 8), Options{Sync: true, WriteDelay: time.Second}); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Sync with a write delay: %v, want EINVAL", err)
	}
}

// Reading 64 blocks twice reads each once below, with or without
// read-ahead.
func TestReadsOncePerBlock(t *testing.T) {
	for _, ra := range []int{0, 4} {
		synctest.Test(t, func(t *testing.T) {
			l := newLower(bs, 64)
			for n := range uint64(64) {
				mustWrite(t, l.mem, n, pattern(bs, int(n)))
			}
			c := newCache(t, l, Options{Size: 64, Threads: 4, WriteDelay: time.Second, ReadAhead: ra, ReadAheadTrigger: 2})
			for range 2 {
				for n := range uint64(64) {
					if !bytes.Equal(mustRead(t, c, n), pattern(bs, int(n))) {
						t.Fatalf("block %d: wrong data", n)
					}
				}
			}
			synctest.Wait()
			for n := range uint64(64) {
				if k := l.readsOfBlock(n); k != 1 {
					t.Fatalf("read-ahead %d: block %d read %d times below", ra, n, k)
				}
			}
			st := c.Stats()
			if st.ReadHits+st.ReadMisses != 128 || st.ReadMisses+st.ReadAheads != 64 {
				t.Fatalf("read-ahead %d: stats %+v", ra, st)
			}
		})
	}
}

// Concurrent readers of a missing block share one read below.
func TestSingleflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		mustWrite(t, l.mem, 9, pattern(bs, 9))
		g := newGate(9)
		l.readHook = func(ctx context.Context, n uint64, do func() error) error {
			g.pass(n)
			return do()
		}
		c := newCache(t, l, Options{Size: 8})
		const readers = 10
		errs := make(chan error, readers)
		for range readers {
			go func() {
				buf := make([]byte, bs)
				err := c.ReadBlock(bg, 9, buf)
				if err == nil && !bytes.Equal(buf, pattern(bs, 9)) {
					err = errors.New("wrong data")
				}
				errs <- err
			}()
		}
		<-g.entered
		synctest.Wait()
		g.release(9)
		for range readers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if k := l.readsOfBlock(9); k != 1 {
			t.Fatalf("%d reads below, want 1", k)
		}
	})
}

// A reader whose context ends while it reads for others does not fail
// them: one of them reads again.
func TestSingleflightLeaderGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		mustWrite(t, l.mem, 9, pattern(bs, 9))
		var calls atomic.Int32
		l.readHook = func(ctx context.Context, n uint64, do func() error) error {
			if calls.Add(1) == 1 {
				<-ctx.Done()
				return ctx.Err()
			}
			return do()
		}
		c := newCache(t, l, Options{Size: 8})
		ctx, cancel := context.WithCancel(bg)
		leader := make(chan error)
		go func() { leader <- c.ReadBlock(ctx, 9, make([]byte, bs)) }()
		synctest.Wait()
		follower := make(chan []byte)
		go func() { follower <- mustRead(t, c, 9) }()
		synctest.Wait()
		cancel()
		if err := <-leader; !errors.Is(err, context.Canceled) {
			t.Fatalf("leader: %v", err)
		}
		if !bytes.Equal(<-follower, pattern(bs, 9)) {
			t.Fatal("follower: wrong data")
		}
		if k := l.readsOfBlock(9); k != 2 {
			t.Fatalf("%d reads below, want 2", k)
		}
	})
}

// Writers wait at MaxDirty until write-back makes room, and the cache
// writes back at once when they do.
func TestMaxDirtyBlocksWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		g := newGate(0, 1)
		l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
			g.pass(n)
			return do()
		}
		c := newCache(t, l, Options{Size: 8, Threads: 4, WriteDelay: time.Hour, MaxDirty: 2})
		mustWrite(t, c, 0, pattern(bs, 0))
		mustWrite(t, c, 1, pattern(bs, 1))
		mustWrite(t, c, 1, pattern(bs, 11)) // a rewrite needs no budget
		var done atomic.Bool
		go func() {
			mustWrite(t, c, 2, pattern(bs, 2))
			done.Store(true)
		}()
		<-g.entered // the oldest dirty block goes up at once
		synctest.Wait()
		if done.Load() {
			t.Fatal("writer did not wait at MaxDirty")
		}
		if st := c.Stats(); st.DirtyBlocks != 2 {
			t.Fatalf("%d dirty blocks, want 2", st.DirtyBlocks)
		}
		g.release(0)
		g.release(1)
		synctest.Wait()
		if !done.Load() {
			t.Fatal("writer still waiting after a write-back")
		}
		if !bytes.Equal(l.stored(0), pattern(bs, 0)) {
			t.Fatal("block 0 not written back")
		}
	})
}

// Read-ahead follows a sequential run and not random reads.
func TestReadAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		for n := range uint64(64) {
			mustWrite(t, l.mem, n, pattern(bs, int(n)))
		}
		c := newCache(t, l, Options{Size: 32, Threads: 8, WriteDelay: time.Second, ReadAhead: 4, ReadAheadTrigger: 2})
		for _, n := range []uint64{40, 20, 30, 5, 5} {
			mustRead(t, c, n)
		}
		synctest.Wait()
		if k := l.reads.Load(); k != 4 {
			t.Fatalf("random reads: %d reads below, want 4", k)
		}
		mustRead(t, c, 10)
		mustRead(t, c, 11)
		synctest.Wait()
		for n := uint64(12); n <= 15; n++ {
			if l.readsOfBlock(n) != 1 {
				t.Fatalf("block %d not read ahead", n)
			}
		}
		if l.readsOfBlock(16) != 0 {
			t.Fatal("read ahead too far")
		}
		reads := l.reads.Load()
		if !bytes.Equal(mustRead(t, c, 12), pattern(bs, 12)) {
			t.Fatal("read-ahead block: wrong data")
		}
		synctest.Wait()
		if got := l.reads.Load(); got != reads+1 || l.readsOfBlock(16) != 1 {
			t.Fatalf("after reading block 12: %d reads below (want %d), block 16 read %d times",
				got, reads+1, l.readsOfBlock(16))
		}
		if st := c.Stats(); st.ReadAheads != 5 {
			t.Fatalf("%d read-aheads, want 5", st.ReadAheads)
		}
	})
}

// Read-ahead stops when the cache has nothing evictable.
func TestReadAheadStopsWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		c := newCache(t, l, Options{Size: 4, Threads: 4, WriteDelay: time.Hour, ReadAhead: 8, ReadAheadTrigger: 1})
		for n := uint64(20); n < 23; n++ {
			mustWrite(t, c, n, pattern(bs, int(n))) // 3 dirty slots
		}
		mustRead(t, c, 0)
		synctest.Wait()
		// Block 0 and one read-ahead share the last slot; read-ahead does
		// not evict its own unread blocks.
		if st := c.Stats(); st.CurrentSize != 4 || st.ReadAheads != 1 || l.reads.Load() != 2 {
			t.Fatalf("stats %+v, %d reads below", st, l.reads.Load())
		}
	})
}

// The cache never holds more than Size blocks, in memory too.
func TestEvictionBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		c := newCache(t, l, Options{Size: 4, Threads: 2, WriteDelay: time.Hour})
		for n := range uint64(20) {
			mustWrite(t, c, n, pattern(bs, int(n)))
			if st := c.Stats(); st.CurrentSize > 4 {
				t.Fatalf("%d blocks cached", st.CurrentSize)
			}
		}
		for n := uint64(20); n < 40; n++ {
			mustRead(t, c, n)
		}
		if st := c.Stats(); st.CurrentSize > 4 {
			t.Fatalf("%d blocks cached", st.CurrentSize)
		}
		if k := c.slots.(*memSlots).allocated(); k > 4 {
			t.Fatalf("%d slot buffers allocated", k)
		}
		mustFlush(t, c)
		for n := range uint64(20) {
			if !bytes.Equal(l.stored(n), pattern(bs, int(n))) {
				t.Fatalf("block %d lost", n)
			}
		}
	})
}

// Blocks below NumProtected are evicted last.
func TestProtectedEvictedLast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		c := newCache(t, l, Options{Size: 4, NumProtected: 2, WriteDelay: time.Second})
		mustRead(t, c, 0)
		mustRead(t, c, 1)
		for n := uint64(10); n < 30; n++ {
			mustRead(t, c, n)
		}
		mustRead(t, c, 0)
		mustRead(t, c, 1)
		if l.readsOfBlock(0) != 1 || l.readsOfBlock(1) != 1 {
			t.Fatal("protected blocks were evicted")
		}
		if l.readsOfBlock(28) != 1 || l.readsOfBlock(10) != 1 {
			t.Fatal("miscounted")
		}
		// When no other clean block is left, they go too.
		for n := uint64(40); n < 44; n++ {
			mustWrite(t, c, n, pattern(bs, int(n)))
		}
		mustRead(t, c, 0)
		if l.readsOfBlock(0) != 2 {
			t.Fatal("protected block kept beyond capacity")
		}
	})
}

// Clean blocks unused for Timeout are evicted; use renews them.
func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		c := newCache(t, l, Options{Size: 8, Timeout: time.Second, WriteDelay: 100 * time.Millisecond})
		mustRead(t, c, 5)
		mustWrite(t, c, 6, pattern(bs, 6))
		time.Sleep(900 * time.Millisecond)
		mustRead(t, c, 5) // renews it
		time.Sleep(900 * time.Millisecond)
		synctest.Wait()
		// Block 6 became clean after 100 ms and expired at 1.1 s.
		if st := c.Stats(); st.CurrentSize != 1 || st.Expired != 1 {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if st := c.Stats(); st.CurrentSize != 0 || st.Expired != 2 {
			t.Fatalf("stats %+v", st)
		}
		mustRead(t, c, 5)
		if l.readsOfBlock(5) != 2 {
			t.Fatal("expired block not read again")
		}
	})
}

// Dirty blocks never expire, and a block being written while it uploads
// is uploaded again after: below ends with the last write, and a Flush
// called after that write waits for the second upload.
func TestRewriteDuringUpload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		var first atomic.Bool
		first.Store(true)
		release := make(chan struct{})
		entered := make(chan struct{})
		l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
			if first.Swap(false) {
				close(entered)
				<-release
			}
			return do()
		}
		c := newCache(t, l, Options{Size: 8, WriteDelay: 10 * time.Millisecond, Timeout: time.Millisecond})
		mustWrite(t, c, 7, pattern(bs, 1))
		<-entered // uploading pattern 1
		mustWrite(t, c, 7, pattern(bs, 2))
		if !bytes.Equal(mustRead(t, c, 7), pattern(bs, 2)) {
			t.Fatal("read during upload: not the last write")
		}
		flushed := make(chan error)
		go func() { flushed <- c.Flush(bg) }()
		synctest.Wait()
		select {
		case err := <-flushed:
			t.Fatalf("flush returned (%v) while the last write was not below", err)
		default:
		}
		close(release)
		if err := <-flushed; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(l.stored(7), pattern(bs, 2)) {
			t.Fatal("below does not hold the last write")
		}
		if k := l.writesOfBlock(7); k != 2 {
			t.Fatalf("%d uploads, want 2", k)
		}
	})
}

// A failed upload keeps the block dirty and readable; Flush reports the
// failure; the block is retried with backoff, and by every Flush.
func TestUploadFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		var failing atomic.Bool
		failing.Store(true)
		l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
			if failing.Load() {
				return errInjected
			}
			return do()
		}
		c := newCache(t, l, Options{Size: 8, WriteDelay: 10 * time.Millisecond})
		mustWrite(t, c, 3, pattern(bs, 3))
		if err := c.Flush(bg); !errors.Is(err, errInjected) {
			t.Fatalf("flush: %v, want the upload's failure", err)
		}
		if !bytes.Equal(mustRead(t, c, 3), pattern(bs, 3)) {
			t.Fatal("failed block not readable")
		}
		st := c.Stats()
		if st.DirtyBlocks != 1 || st.UploadErrors != 1 {
			t.Fatalf("stats %+v", st)
		}
		// A flush tries again at once, backoff or not.
		if err := c.Flush(bg); !errors.Is(err, errInjected) {
			t.Fatalf("flush: %v", err)
		}
		if st := c.Stats(); st.UploadErrors != 2 {
			t.Fatalf("flush did not retry: %+v", st)
		}
		// The workers retry on their own after the backoff.
		time.Sleep(maxRetryBackoff / 2)
		synctest.Wait()
		retries := c.Stats().UploadErrors
		if retries < 4 {
			t.Fatalf("%d attempts after backoff", retries)
		}
		failing.Store(false)
		time.Sleep(maxRetryBackoff)
		synctest.Wait()
		if !bytes.Equal(l.stored(3), pattern(bs, 3)) {
			t.Fatal("block not written back once the store below recovered")
		}
		if st := c.Stats(); st.DirtyBlocks != 0 || st.Uploads != 1 {
			t.Fatalf("stats %+v", st)
		}
		mustFlush(t, c)
	})
}

// Zero writes are dirty writes whose write-back is a WriteBlock(nil).
func TestZeroWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		var nilWrites atomic.Int32
		l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
			if data == nil {
				nilWrites.Add(1)
			}
			return do()
		}
		fl := fullLower{l}
		c := newCache(t, fl, Options{Size: 8, WriteDelay: time.Second})
		mustWrite(t, c, 4, pattern(bs, 4))
		mustFlush(t, c)
		mustWrite(t, c, 4, make([]byte, bs))
		if p, _ := c.Presence(bg, 4); p != blockstore.Absent {
			t.Fatalf("zero-dirty block: presence %v", p)
		}
		if p, _ := fl.Presence(bg, 4); p != blockstore.Present {
			t.Fatal("zero write went below before the delay")
		}
		if !blockstore.IsZero(mustRead(t, c, 4)) {
			t.Fatal("zero-dirty block reads as data")
		}
		mustFlush(t, c)
		if p, _ := fl.Presence(bg, 4); p != blockstore.Absent || nilWrites.Load() != 1 {
			t.Fatalf("after flush: presence %v, %d nil writes", p, nilWrites.Load())
		}
	})
}

// Bulk zero: cached blocks become zero-dirty, others are zeroed below at
// once; a write after it always wins.
func TestBulkZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		fl := fullLower{l}
		for _, n := range []uint64{2, 3, 4} {
			mustWrite(t, l.mem, n, pattern(bs, int(n)))
		}
		block4 := make(chan struct{})
		l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
			if n == 4 && data != nil {
				<-block4
			}
			return do()
		}
		c := newCache(t, fl, Options{Size: 8, WriteDelay: time.Second})
		mustRead(t, c, 2)                    // clean
		mustWrite(t, c, 4, pattern(bs, 104)) // will be uploading
		time.Sleep(time.Second)
		synctest.Wait()
		mustWrite(t, c, 1, pattern(bs, 101)) // dirty
		if err := c.ZeroBlocks(bg, []uint64{1, 2, 3, 4, 5, 3}); err != nil {
			t.Fatal(err)
		}
		if len(fl.bulkCalls) != 1 || !slices.Equal(sorted(fl.bulkCalls[0]), []uint64{2, 3, 5}) {
			t.Fatalf("bulk calls below %v, want one of [2 3 5]", fl.bulkCalls)
		}
		for n := range uint64(6) {
			if !blockstore.IsZero(mustRead(t, c, n)) {
				t.Fatalf("block %d not zero after bulk zero", n)
			}
		}
		for _, n := range []uint64{1, 2, 3} {
			mustWrite(t, c, n, pattern(bs, int(200+n)))
		}
		close(block4)
		mustFlush(t, c)
		for _, n := range []uint64{1, 2, 3} {
			if !bytes.Equal(l.stored(n), pattern(bs, int(200+n))) {
				t.Fatalf("block %d: the write after the bulk zero lost", n)
			}
		}
		if !blockstore.IsZero(l.stored(4)) || !blockstore.IsZero(l.stored(5)) {
			t.Fatal("bulk-zeroed blocks hold data below")
		}
		if !bytes.Equal(mustRead(t, c, 2), pattern(bs, 202)) {
			t.Fatal("cache lost the write")
		}
	})
}

// A bulk zero passing through and a read of the same block: the read
// waits, so it cannot cache the old data; a bulk zero of a block being
// read becomes a zero write.
func TestBulkZeroRaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		mustWrite(t, l.mem, 5, pattern(bs, 5))
		mustWrite(t, l.mem, 6, pattern(bs, 6))
		bulkGate := make(chan struct{})
		fl := bulkHookLower{fullLower{l}, func() { <-bulkGate }}
		c := newCache(t, fl, Options{Size: 8, WriteDelay: time.Second})
		zeroed := make(chan error)
		go func() { zeroed <- c.ZeroBlocks(bg, []uint64{5}) }()
		synctest.Wait()
		read := make(chan []byte)
		go func() { read <- mustRead(t, c, 5) }()
		synctest.Wait()
		if l.readsOfBlock(5) != 0 {
			t.Fatal("read of a block being zeroed went below")
		}
		close(bulkGate)
		if err := <-zeroed; err != nil {
			t.Fatal(err)
		}
		if !blockstore.IsZero(<-read) {
			t.Fatal("read after the bulk zero returned old data")
		}

		// Now the other way round: a bulk zero of a block being loaded
		// is a zero write, which waits for the load to end (the load
		// owns the slot meanwhile, as in s3backer).
		g := newGate(6)
		l.readHook = func(ctx context.Context, n uint64, do func() error) error {
			err := do()
			g.pass(n)
			return err
		}
		go func() { read <- mustRead(t, c, 6) }()
		<-g.entered // loaded the old data, not yet in the cache
		go func() { zeroed <- c.ZeroBlocks(bg, []uint64{6}) }()
		synctest.Wait()
		select {
		case err := <-zeroed:
			t.Fatalf("bulk zero of a block being loaded did not wait for the load (%v)", err)
		default:
		}
		g.release(6)
		if err := <-zeroed; err != nil {
			t.Fatal(err)
		}
		<-read // old or zero: concurrent
		if !blockstore.IsZero(mustRead(t, c, 6)) {
			t.Fatal("cache kept the loaded data over the zero")
		}
		mustFlush(t, c)
		if !blockstore.IsZero(l.stored(6)) {
			t.Fatal("block 6 not zero below")
		}
	})
}

type bulkHookLower struct {
	fullLower
	hook func()
}

func (b bulkHookLower) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	b.hook()
	return b.fullLower.ZeroBlocks(ctx, blocks)
}

func sorted(s []uint64) []uint64 {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func TestPresenceAndSurvey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		fl := fullLower{l}
		for _, n := range []uint64{1, 2, 3} {
			mustWrite(t, l.mem, n, pattern(bs, int(n)))
		}
		c := newCache(t, fl, Options{Size: 8, WriteDelay: time.Hour})
		mustWrite(t, c, 5, pattern(bs, 5))
		mustFlush(t, c)                    // 5 is clean and below
		mustWrite(t, c, 2, nil)            // zero-dirty, still below
		mustWrite(t, c, 4, pattern(bs, 4)) // dirty, not below
		mustRead(t, c, 7)                  // clean zero
		want := map[uint64]blockstore.Presence{
			1: blockstore.Present, 2: blockstore.Absent, 3: blockstore.Present, 4: blockstore.Present,
			5: blockstore.Present, 6: blockstore.Absent, 7: blockstore.Absent,
		}
		for n, p := range want {
			if got, err := c.Presence(bg, n); err != nil || got != p {
				t.Errorf("presence of %d: %v %v, want %v", n, got, err, p)
			}
		}
		var got []uint64
		if err := c.Survey(bg, func(n uint64) { got = append(got, n) }); err != nil {
			t.Fatal(err)
		}
		if g := sorted(got); !slices.Equal(g, []uint64{1, 3, 4, 5}) {
			t.Fatalf("survey reported %v, want [1 3 4 5]", g)
		}
		// Without a Prober or Surveyor below.
		c2 := newCache(t, newLower(bs, 8), Options{Size: 4})
		if p, err := c2.Presence(bg, 1); p != blockstore.Unknown || err != nil {
			t.Fatalf("presence without a prober: %v %v", p, err)
		}
		if err := c2.Survey(bg, func(uint64) {}); !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("survey without a surveyor: %v", err)
		}
	})
}

// The known-zero layer's survey over the cache: blocks written through it
// while the survey runs keep their data.
func TestZeroLayerSurvey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		fl := fullLower{l}
		for _, n := range []uint64{1, 2, 3} {
			mustWrite(t, l.mem, n, pattern(bs, int(n)))
		}
		c := newCache(t, fl, Options{Size: 8, WriteDelay: time.Hour})
		z := zero.New(c, zero.Options{Survey: true})
		mustWrite(t, z, 2, nil)
		mustWrite(t, z, 9, pattern(bs, 9))
		<-z.SurveyDone()
		if err := z.SurveyErr(); err != nil {
			t.Fatal(err)
		}
		for n, p := range map[uint64]blockstore.Presence{
			1: blockstore.Present, 2: blockstore.Absent, 3: blockstore.Present, 9: blockstore.Present, 10: blockstore.Absent,
		} {
			if got, _ := z.Presence(bg, n); got != p {
				t.Errorf("block %d: %v, want %v", n, got, p)
			}
		}
		if !bytes.Equal(mustRead(t, z, 9), pattern(bs, 9)) || !blockstore.IsZero(mustRead(t, z, 2)) {
			t.Fatal("wrong data")
		}
	})
}

// Prefetch returns at once; the workers load the blocks.
func TestPrefetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		for n := range uint64(64) {
			mustWrite(t, l.mem, n, pattern(bs, int(n)))
		}
		g := newGate(10, 11, 12, 13, 14)
		l.readHook = func(ctx context.Context, n uint64, do func() error) error {
			g.pass(n)
			return do()
		}
		c := newCache(t, l, Options{Size: 8, Threads: 8})
		if err := c.Prefetch(bg, 10, 5); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			<-g.entered // all five in parallel
		}
		for n := uint64(10); n < 15; n++ {
			g.release(n)
		}
		synctest.Wait()
		for n := uint64(10); n < 15; n++ {
			if !bytes.Equal(mustRead(t, c, n), pattern(bs, int(n))) || l.readsOfBlock(n) != 1 {
				t.Fatalf("block %d", n)
			}
		}
		// More than the cache holds: only Size blocks are queued.
		if err := c.Prefetch(bg, 20, 40); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := c.Stats(); st.Prefetches != 5+8 || st.CurrentSize != 8 {
			t.Fatalf("stats %+v", st)
		}
		if err := c.Prefetch(bg, 60, 5); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("prefetch beyond the end: %v", err)
		}
	})
}

// With no slot free or evictable, a read miss reads below uncached.
func TestReadBypassWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		mustWrite(t, l.mem, 30, pattern(bs, 30))
		hold := make(chan struct{})
		l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
			<-hold
			return do()
		}
		c := newCache(t, l, Options{Size: 2, WriteDelay: time.Hour})
		mustWrite(t, c, 0, pattern(bs, 0))
		mustWrite(t, c, 1, pattern(bs, 1))
		if !bytes.Equal(mustRead(t, c, 30), pattern(bs, 30)) {
			t.Fatal("wrong data")
		}
		if st := c.Stats(); st.CurrentSize != 2 {
			t.Fatalf("stats %+v", st)
		}
		close(hold)
	})
}

func TestFlushBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		c := newCache(t, l, Options{Size: 8, WriteDelay: time.Hour})
		mustWrite(t, c, 1, pattern(bs, 1))
		mustWrite(t, c, 2, pattern(bs, 2))
		if err := c.FlushBlocks(bg, []uint64{2, 3}); err != nil {
			t.Fatal(err)
		}
		if l.writesOfBlock(2) != 1 || l.writesOfBlock(1) != 0 || l.flushes.Load() != 1 {
			t.Fatal("FlushBlocks wrote the wrong blocks")
		}
		if err := c.FlushBlocks(bg, []uint64{99}); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("flush of a block beyond the end: %v", err)
		}
	})
}

// Close writes back everything; a store below that keeps failing makes
// Close report the loss instead of hanging.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		c, err := New(l, Options{Size: 8, WriteDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, c, 1, pattern(bs, 1))
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(l.stored(1), pattern(bs, 1)) {
			t.Fatal("dirty block lost at close")
		}
		if err := c.ReadBlock(bg, 1, make([]byte, bs)); !errors.Is(err, ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
		if err := c.WriteBlock(bg, 1, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}

		l2 := newLower(bs, 64)
		l2.writeHook = func(context.Context, uint64, []byte, func() error) error { return errInjected }
		c2, _ := New(l2, Options{Size: 8, WriteDelay: time.Hour})
		mustWrite(t, c2, 1, pattern(bs, 1))
		if err := c2.Close(); !errors.Is(err, errInjected) {
			t.Fatalf("close with a failing store below: %v", err)
		}
	})
}

// The write-back accelerates as dirty blocks fill the cache (s3backer's
// formula): a dirty block is due WriteDelay * dirty/(0.9 * Size) early.
func TestDirtyRatioAccelerates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		// One worker: with more, blocks still uploading count as dirty and
		// several may go at once.
		c := newCache(t, l, Options{Size: 10, Threads: 1, WriteDelay: 9 * time.Second})
		for n := range uint64(8) {
			mustWrite(t, c, n, pattern(bs, int(n)))
		}
		synctest.Wait()
		if l.writes.Load() != 0 {
			t.Fatal("written back early at 80 %")
		}
		mustWrite(t, c, 8, pattern(bs, 8)) // 90 %: due now
		synctest.Wait()
		if l.writes.Load() != 1 {
			t.Fatalf("%d written back at 90 %%, want 1", l.writes.Load())
		}
		// At 80 %, 8 s early: after 1 s the next one, and so on.
		time.Sleep(time.Second)
		synctest.Wait()
		if l.writes.Load() != 2 {
			t.Fatalf("%d written back after 1 s, want 2", l.writes.Load())
		}
		time.Sleep(8 * time.Second)
		synctest.Wait()
		if l.writes.Load() != 9 {
			t.Fatalf("%d written back after the delay, want 9", l.writes.Load())
		}
	})
}

// A persistent slot store's blocks are loaded at open; dirty ones are
// written back at once.
func TestRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		slots := &recSlots{Slots: NewMemSlots(bs, 4)}
		_ = slots.Write(0, 7, pattern(bs, 7))
		_ = slots.Write(2, 9, pattern(bs, 9))
		slots.rec = []Recovered{{Slot: 0, Block: 7, Dirty: true}, {Slot: 2, Block: 9}}
		c := newCache(t, l, Options{Slots: slots, WriteDelay: time.Hour, NoVerify: true})
		synctest.Wait()
		if !bytes.Equal(l.stored(7), pattern(bs, 7)) {
			t.Fatal("recovered dirty block not written back")
		}
		if !bytes.Equal(mustRead(t, c, 9), pattern(bs, 9)) || l.reads.Load() != 0 {
			t.Fatal("recovered clean block not served from the cache")
		}
		st := c.Stats()
		if st.InitialSize != 2 || st.CurrentSize != 2 {
			t.Fatalf("stats %+v", st)
		}
		for n := uint64(20); n < 30; n++ {
			mustRead(t, c, n)
		}
		if c.Stats().CurrentSize != 4 {
			t.Fatal("slots not all usable")
		}
		bad := &recSlots{Slots: NewMemSlots(bs, 4), rec: []Recovered{{Slot: 0, Block: 1}, {Slot: 1, Block: 1}}}
		if _, err := New(l, Options{Slots: bad}); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("block recovered twice: %v", err)
		}
	})
}

type recSlots struct {
	Slots
	rec []Recovered
}

func (r *recSlots) Recovered() []Recovered { return r.rec }

func TestReadPart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		mustWrite(t, l.mem, 3, pattern(bs, 3))
		c := newCache(t, l, Options{Size: 4, WriteDelay: time.Second})
		p := make([]byte, 100)
		if err := c.ReadPart(bg, 3, 50, p); err != nil || !bytes.Equal(p, pattern(bs, 3)[50:150]) {
			t.Fatalf("miss: %v", err)
		}
		if err := c.ReadPart(bg, 3, bs-100, p); err != nil || !bytes.Equal(p, pattern(bs, 3)[bs-100:]) {
			t.Fatalf("hit: %v", err)
		}
		if l.reads.Load() != 1 {
			t.Fatalf("%d reads below", l.reads.Load())
		}
		mustWrite(t, c, 3, pattern(bs, 4))
		if err := c.ReadPart(bg, 3, 0, p); err != nil || !bytes.Equal(p, pattern(bs, 4)[:100]) {
			t.Fatalf("dirty hit: %v", err)
		}
		if err := c.ReadPart(bg, 9, 0, p); err != nil || !blockstore.IsZero(p) {
			t.Fatalf("zero block: %v", err)
		}
		for _, bad := range []struct{ off, n int }{{-1, 1}, {bs - 10, 11}, {bs + 1, 0}} {
			if err := c.ReadPart(bg, 3, bad.off, make([]byte, bad.n)); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("%d bytes at %d: %v", bad.n, bad.off, err)
			}
		}
	})
}

// An upload that started before a Flush and fails does not fail the
// Flush: it gets a fresh attempt.
func TestFlushIgnoresStaleFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		entered, fail := make(chan struct{}), make(chan struct{})
		var calls atomic.Int32
		l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
			if calls.Add(1) == 1 {
				close(entered)
				<-fail
				return errInjected
			}
			return do()
		}
		c := newCache(t, l, Options{Size: 8, WriteDelay: 10 * time.Millisecond})
		mustWrite(t, c, 3, pattern(bs, 3))
		<-entered
		flushed := make(chan error)
		go func() { flushed <- c.Flush(bg) }()
		synctest.Wait()
		close(fail)
		if err := <-flushed; err != nil {
			t.Fatalf("flush failed on an attempt older than it: %v", err)
		}
		if !bytes.Equal(l.stored(3), pattern(bs, 3)) || calls.Load() != 2 {
			t.Fatalf("%d attempts", calls.Load())
		}
	})
}

// Without a BulkZeroer below, a bulk zero is a zero write per block.
func TestBulkZeroPerBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		for n := range uint64(4) {
			mustWrite(t, l.mem, n, pattern(bs, int(n)))
		}
		c := newCache(t, l, Options{Size: 8, WriteDelay: time.Hour})
		if err := c.ZeroBlocks(bg, []uint64{0, 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		for n := range uint64(4) {
			if !blockstore.IsZero(l.stored(n)) || l.writesOfBlock(n) != 1 {
				t.Fatalf("block %d not zeroed below", n)
			}
		}
		l.writeHook = func(context.Context, uint64, []byte, func() error) error { return errInjected }
		if err := c.ZeroBlocks(bg, []uint64{5}); !errors.Is(err, errInjected) {
			t.Fatalf("failing zero below: %v", err)
		}
		if err := c.ZeroBlocks(bg, []uint64{64}); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("zero beyond the end: %v", err)
		}
	})
}

// hookSlots lets a test stall or fail slot writes and fills.
type hookSlots struct {
	Slots
	write, fill func(n uint64) error
}

func (h *hookSlots) Write(slot int, n uint64, data []byte) error {
	if h.write != nil {
		if err := h.write(n); err != nil {
			return err
		}
	}
	return h.Slots.Write(slot, n, data)
}

func (h *hookSlots) Fill(slot int, n uint64, data []byte, tag string) error {
	if h.fill != nil {
		if err := h.fill(n); err != nil {
			return err
		}
	}
	return h.Slots.Fill(slot, n, data, tag)
}

// A slot store that fails: the block is dropped from the cache, and
// those who waited on it start over; below still holds the last
// acknowledged write.
func TestSlotFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		mustWrite(t, l.mem, 5, pattern(bs, 5))
		mustWrite(t, l.mem, 6, pattern(bs, 6))
		gate, outcome := make(chan struct{}), make(chan error, 1)
		hs := &hookSlots{Slots: NewMemSlots(bs, 4)}
		c := newCache(t, l, Options{Slots: hs, WriteDelay: time.Hour})

		// A reader waiting for a new block's writer, whose slot write fails.
		hs.write = func(n uint64) error { <-gate; return <-outcome }
		wrote := make(chan error)
		go func() { wrote <- c.WriteBlock(bg, 5, pattern(bs, 50)) }()
		synctest.Wait()
		read := make(chan []byte)
		go func() { read <- mustRead(t, c, 5) }()
		// It waits on the entry's lock, which is not durably blocking:
		// wait for it to count its hit instead of synctest.Wait.
		for c.Stats().ReadHits == 0 {
			runtime.Gosched()
		}
		outcome <- errInjected
		close(gate)
		if err := <-wrote; !errors.Is(err, errInjected) {
			t.Fatalf("write: %v", err)
		}
		if !bytes.Equal(<-read, pattern(bs, 5)) {
			t.Fatal("reader did not start over")
		}

		// A clean block whose rewrite fails is dropped.
		hs.write = func(uint64) error { return errInjected }
		if err := c.WriteBlock(bg, 5, pattern(bs, 51)); !errors.Is(err, errInjected) {
			t.Fatalf("write: %v", err)
		}
		if !bytes.Equal(mustRead(t, c, 5), pattern(bs, 5)) || l.readsOfBlock(5) != 2 {
			t.Fatal("failed rewrite not dropped")
		}
		hs.write = nil

		// A writer waiting on a load whose fill fails starts over.
		gate = make(chan struct{})
		hs.fill = func(n uint64) error { <-gate; return errInjected }
		readErr := make(chan error)
		go func() { readErr <- c.ReadBlock(bg, 6, make([]byte, bs)) }()
		synctest.Wait()
		go func() { wrote <- c.WriteBlock(bg, 6, pattern(bs, 60)) }()
		synctest.Wait() // it waits for the load to end
		select {
		case err := <-wrote:
			t.Fatalf("write of a block being loaded did not wait for the load (%v)", err)
		default:
		}
		close(gate)
		if err := <-readErr; err != nil { // the read worked; caching it did not
			t.Fatalf("read: %v", err)
		}
		if err := <-wrote; err != nil {
			t.Fatalf("write: %v", err)
		}
		hs.fill = nil
		if !bytes.Equal(mustRead(t, c, 6), pattern(bs, 60)) {
			t.Fatal("write lost")
		}
		mustFlush(t, c)
		if !bytes.Equal(l.stored(6), pattern(bs, 60)) {
			t.Fatal("write not below")
		}
		if st := c.Stats(); st.ReadHitRatio() == 0 || st.WriteHitRatio() == 0 {
			t.Fatalf("ratios of %+v", st)
		}
	})
}

// The blocks of one large sequential read arrive out of order (the volume
// reads them in parallel): read-ahead still starts, and the late blocks do
// not reset the detection.
func TestReadAheadReordered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		c := newCache(t, l, Options{Size: 32, Threads: 8, WriteDelay: time.Second, ReadAhead: 4, ReadAheadTrigger: 2})
		for _, n := range []uint64{10, 11, 13, 12, 15, 14} {
			mustRead(t, c, n)
		}
		synctest.Wait()
		for n := uint64(16); n <= 19; n++ {
			if l.readsOfBlock(n) != 1 {
				t.Fatalf("block %d not read ahead after reordered sequential reads", n)
			}
		}
		// Reading 12 and 14 found them still loading, which may have
		// widened the window, but never past one block per worker.
		if l.readsOfBlock(15+8+1) != 0 {
			t.Fatal("read ahead too far")
		}
		// A random reader's short forward jump is not a run.
		before := c.Stats().ReadAheads
		for _, n := range []uint64{40, 45, 50} {
			mustRead(t, c, n)
		}
		synctest.Wait()
		if got := c.Stats().ReadAheads; got != before {
			t.Fatalf("jumps of 5 blocks started %d read-aheads", got-before)
		}
	})
}

// A reader that waits for the blocks read-ahead is loading widens the
// window, up to one block per worker; a new run starts from ReadAhead.
func TestReadAheadGrows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 128)
		l.readHook = func(ctx context.Context, n uint64, do func() error) error {
			time.Sleep(10 * time.Millisecond) // every read below takes a while
			return do()
		}
		c := newCache(t, l, Options{Size: 64, Threads: 8, WriteDelay: time.Second, ReadAhead: 2, ReadAheadTrigger: 2})
		ahead := func(last uint64) int { // blocks past last being or already read below
			k := 0
			for n := last + 1; n < 128; n++ {
				k += min(1, l.readsOfBlock(n))
			}
			return k
		}
		for n := range uint64(31) {
			mustRead(t, c, n)
		}
		synctest.Wait()
		if k := ahead(30); k != 8 {
			t.Fatalf("after a waiting sequential reader: %d blocks ahead, want 8 (one per worker)", k)
		}
		// A new run, where nothing is loading: back to ReadAhead.
		mustRead(t, c, 80)
		mustRead(t, c, 81)
		synctest.Wait()
		if k := ahead(81); k != 2 {
			t.Fatalf("a new run: %d blocks ahead, want 2", k)
		}
	})
}

// Two sequential readers interleaved (or one with random reads between
// its own) each get read-ahead: runs are followed apart.
func TestReadAheadTwoRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 128)
		c := newCache(t, l, Options{Size: 64, Threads: 8, WriteDelay: time.Second, ReadAhead: 4, ReadAheadTrigger: 2})
		for _, n := range []uint64{10, 60, 11, 61, 100, 12, 62} {
			mustRead(t, c, n)
		}
		synctest.Wait()
		for _, first := range []uint64{13, 63} {
			for n := first; n < first+4; n++ {
				if l.readsOfBlock(n) != 1 {
					t.Fatalf("block %d not read ahead with two runs interleaved", n)
				}
			}
		}
		if l.readsOfBlock(101) != 0 {
			t.Fatal("a single random read started read-ahead")
		}
	})
}

// A run's read-ahead stops short of blocks another run has already read
// (and the cache may have evicted): nbdcopy's threads each read their own
// part of the disk, and reaching the next part must not fetch it again.
func TestReadAheadNotIntoAnotherRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 128)
		// A cache too small to keep the second part once it is read.
		c := newCache(t, l, Options{Size: 8, Threads: 4, WriteDelay: time.Second, ReadAhead: 4, ReadAheadTrigger: 2})
		for n := uint64(40); n < 70; n++ { // the second part, read first
			mustRead(t, c, n)
		}
		synctest.Wait()
		for n := uint64(36); n < 40; n++ { // the end of the first part
			mustRead(t, c, n)
		}
		synctest.Wait()
		for n := uint64(40); n < 70; n++ {
			if k := l.readsOfBlock(n); k != 1 {
				t.Fatalf("block %d read %d times below", n, k)
			}
		}
	})
}
