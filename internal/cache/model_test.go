package cache

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
	"github.com/s3backer-go/s3backer/internal/zero"
)

// flaky is a store below the cache that fails and stalls at random: a
// failed write may have landed or not, a bulk zero may stop half-way.
type flaky struct {
	mem     *memstore.Store
	healthy atomic.Bool
	fail    float64 // probability that a call fails
	stall   float64 // probability that a call sleeps a little first

	mu  sync.Mutex
	rng *rand.Rand
}

func newFlaky(bs int, n uint64, seed uint64) *flaky {
	return &flaky{mem: memstore.New(bs, n), fail: 0.03, stall: 0.2, rng: rand.New(rand.NewPCG(seed, 99))}
}

func (f *flaky) roll() (fail, landed bool, stall time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() < f.stall {
		stall = time.Duration(f.rng.IntN(300)) * time.Microsecond
	}
	fail = !f.healthy.Load() && f.rng.Float64() < f.fail
	landed = f.rng.IntN(2) == 0
	return
}

func (f *flaky) BlockSize() int              { return f.mem.BlockSize() }
func (f *flaky) NumBlocks() uint64           { return f.mem.NumBlocks() }
func (f *flaky) Flush(context.Context) error { return nil }
func (f *flaky) Close() error                { return nil }
func (f *flaky) pause(d time.Duration)       { time.Sleep(d) } // simulated latency, not synchronisation
func (f *flaky) err(op string, n uint64) error {
	return fmt.Errorf("%s block %d: %w", op, n, errInjected)
}

func (f *flaky) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	fail, _, stall := f.roll()
	f.pause(stall)
	if fail {
		return f.err("read", n)
	}
	return f.mem.ReadBlock(ctx, n, buf)
}

func (f *flaky) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	fail, landed, stall := f.roll()
	f.pause(stall)
	if fail && !landed {
		return f.err("write", n)
	}
	if err := f.mem.WriteBlock(ctx, n, data); err != nil {
		return err
	}
	if fail {
		return f.err("write (landed)", n)
	}
	return nil
}

func (f *flaky) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	for _, n := range blocks {
		fail, landed, stall := f.roll()
		f.pause(stall / 4)
		if fail && !landed {
			return f.err("bulk zero", n)
		}
		if err := f.mem.WriteBlock(ctx, n, nil); err != nil {
			return err
		}
	}
	return nil
}

// TestModel runs goroutines of random reads, writes (data, zeroes and
// parts of blocks), bulk zeroes and flushes through zero.New(cache.New(flaky)), each goroutine on
// its own blocks (the volume serialises writers of a block), plus a
// snooper reading everyone's blocks. Reads must return the model's bytes;
// after every Flush that returns nil the store below must hold the
// model's bytes for every block of the flushing goroutine; at the end,
// with the store below healthy, everything must be below.
func TestModel(t *testing.T) {
	configs := []struct {
		name string
		opt  Options
	}{
		{"writeback", Options{Size: 24, Threads: 4, WriteDelay: 2 * time.Millisecond, ReadAhead: 3, ReadAheadTrigger: 2}},
		{"maxdirty", Options{Size: 24, Threads: 3, WriteDelay: 20 * time.Millisecond, MaxDirty: 6, NumProtected: 8}},
		{"tiny", Options{Size: 3, Threads: 2, WriteDelay: time.Millisecond, Timeout: time.Millisecond}},
		{"writethrough", Options{Size: 16, Threads: 4, ReadAhead: 2, ReadAheadTrigger: 1}},
	}
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, cfg := range configs {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed%d", cfg.name, seed), func(t *testing.T) {
				t.Parallel()
				runModel(t, cfg.opt, seed)
			})
		}
	}
}

// The model's geometry (a persistent Slots for it is made to match).
const (
	modelBlockSize = 256
	modelOwners    = 6
	modelPerOwner  = 16
	modelBlocks    = modelOwners * modelPerOwner
)

func runModel(t *testing.T, opt Options, seed uint64) {
	const (
		bs      = modelBlockSize
		owners  = modelOwners
		perOwn  = modelPerOwner
		nblocks = modelBlocks
		ops     = 300
	)
	f := newFlaky(bs, nblocks, seed)
	c, err := New(f, opt)
	if err != nil {
		t.Fatal(err)
	}
	z := zero.New(c, zero.Options{})
	defer z.Close()

	// Every value ever written to a block, for the snooper.
	var hseed = maphash.MakeSeed()
	var histMu sync.Mutex
	history := make([]map[uint64]bool, nblocks)
	for i := range history {
		history[i] = map[uint64]bool{maphash.Bytes(hseed, make([]byte, bs)): true}
	}
	remember := func(n uint64, data []byte) {
		if data == nil {
			return
		}
		histMu.Lock()
		history[n][maphash.Bytes(hseed, data)] = true
		histMu.Unlock()
	}

	var flushChecks atomic.Int64
	var wg sync.WaitGroup
	stopSnoop := make(chan struct{})
	errs := make(chan error, owners+1)
	finals := make([]func() error, owners)
	for g := range owners {
		rng := rand.New(rand.NewPCG(seed, uint64(g)))
		model := make([][]byte, perOwn) // nil: zero
		uncertain := make([]bool, perOwn)
		block := func(i int) uint64 { return uint64(i*owners + g) }
		checkBelow := func(when string) error {
			for i := range perOwn {
				if uncertain[i] {
					continue
				}
				got := make([]byte, bs)
				_ = f.mem.ReadBlock(bg, block(i), got)
				if want := model[i]; !(want == nil && blockstore.IsZero(got) || bytes.Equal(got, want)) {
					return fmt.Errorf("owner %d %s: block %d below differs from the model", g, when, block(i))
				}
			}
			return nil
		}
		checkRead := func(i int) error {
			buf := make([]byte, bs)
			off, end := 0, bs
			var err error
			if rng.IntN(4) == 0 { // a part, from the cache directly
				off = rng.IntN(bs)
				end = off + rng.IntN(bs-off+1)
				err = c.ReadPart(bg, block(i), off, buf[off:end])
			} else {
				err = z.ReadBlock(bg, block(i), buf)
			}
			if err != nil || uncertain[i] {
				return nil // failures below may reach a reader
			}
			want := model[i]
			if want == nil {
				want = make([]byte, bs)
			}
			if !bytes.Equal(buf[off:end], want[off:end]) {
				return fmt.Errorf("owner %d: read of block %d [%d:%d] differs from the model", g, block(i), off, end)
			}
			return nil
		}
		finals[g] = func() error {
			for i := range perOwn {
				if err := checkRead(i); err != nil {
					return err
				}
			}
			return checkBelow("at the end")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for op := range ops {
				i := rng.IntN(perOwn)
				n := block(i)
				switch r := rng.IntN(100); {
				case r < 15 && !uncertain[i]: // write part of a block
					off := rng.IntN(bs)
					p := pattern(bs, int(seed)*1e6+g*1e4+op)[:rng.IntN(bs-off)+1]
					if rng.IntN(4) == 0 {
						clear(p)
					}
					next := make([]byte, bs)
					copy(next, model[i])
					copy(next[off:], p)
					remember(n, next)
					if err := z.WritePart(bg, n, off, p); err != nil {
						uncertain[i] = true
						continue
					}
					if blockstore.IsZero(next) {
						next = nil
					}
					model[i] = next
				case r < 40: // write data or zeroes
					var data []byte
					if rng.IntN(5) > 0 {
						data = pattern(bs, int(seed)*1e6+g*1e4+op)
					} else if rng.IntN(2) == 0 {
						data = make([]byte, bs)
					}
					remember(n, data)
					if err := z.WriteBlock(bg, n, data); err != nil {
						uncertain[i] = true
						continue
					}
					if data != nil && blockstore.IsZero(data) {
						data = nil
					}
					model[i], uncertain[i] = data, false
				case r < 80:
					if err := checkRead(i); err != nil {
						errs <- err
						return
					}
				case r < 90: // bulk zero of a few own blocks
					var blocks []uint64
					var idx []int
					for range 1 + rng.IntN(4) {
						j := rng.IntN(perOwn)
						blocks, idx = append(blocks, block(j)), append(idx, j)
					}
					err := z.ZeroBlocks(bg, blocks)
					for _, j := range idx {
						model[j], uncertain[j] = nil, err != nil
					}
				default:
					if err := z.Flush(bg); err != nil {
						continue
					}
					if err := checkBelow("after a flush"); err != nil {
						errs <- err
						return
					}
					flushChecks.Add(1)
				}
			}
		}()
	}
	// The snooper reads everybody's blocks: it must see a whole block that
	// was written at some point.
	var snoop sync.WaitGroup
	snoop.Add(1)
	go func() {
		defer snoop.Done()
		rng := rand.New(rand.NewPCG(seed, 1000))
		buf := make([]byte, bs)
		for {
			select {
			case <-stopSnoop:
				return
			default:
			}
			n := uint64(rng.IntN(nblocks))
			if err := z.ReadBlock(bg, n, buf); err != nil {
				continue
			}
			h := maphash.Bytes(hseed, buf)
			histMu.Lock()
			ok := history[n][h]
			histMu.Unlock()
			if !ok {
				errs <- fmt.Errorf("snooper: block %d holds data never written", n)
				return
			}
		}
	}()
	wg.Wait()
	close(stopSnoop)
	snoop.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	// Heal the store below: the final flush must succeed and leave
	// everything below.
	f.healthy.Store(true)
	if err := z.Flush(bg); err != nil {
		t.Fatalf("final flush: %v", err)
	}
	for g := range owners {
		if err := finals[g](); err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	if st.DirtyBlocks != 0 || st.CurrentSize > uint64(c.size) {
		t.Fatalf("after the final flush: %+v", st)
	}
	if flushChecks.Load() == 0 {
		t.Fatal("no flush succeeded: the model checked nothing below")
	}
	t.Logf("%d flushes checked below; stats %+v", flushChecks.Load(), st)
}
