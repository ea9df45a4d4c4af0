package cache

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

func mustWritePart(t testing.TB, s blockstore.PartWriter, n uint64, off int, p []byte) {
	t.Helper()
	if err := s.WritePart(bg, n, off, p); err != nil {
		t.Fatalf("block %d: write %d bytes at %d: %v", n, len(p), off, err)
	}
}

// with returns block with p at off.
func with(block []byte, off int, p []byte) []byte {
	b := bytes.Clone(block)
	copy(b[off:], p)
	return b
}

// A part write of a block not cached reads it from below once, then
// changes it in place: later parts make no read, many parts inside the
// write delay one upload; the result is the block below with every part.
// Checked with the memory store (in place) and with a slot store that
// can only write whole slots (hookSlots: the fallback).
func TestWritePart(t *testing.T) {
	for _, kind := range []string{"memory", "whole-slot"} {
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLower(bs, 64)
				mustWrite(t, l.mem, 3, pattern(bs, 3))
				opt := Options{Size: 8, WriteDelay: time.Second}
				if kind == "whole-slot" {
					opt.Slots = &hookSlots{Slots: NewMemSlots(bs, 8)}
				}
				c := newCache(t, l, opt)
				want := pattern(bs, 3)
				for i, off := range []int{0, 100, bs - 10, 200} {
					p := pattern(10, 50+i)
					mustWritePart(t, c, 3, off, p)
					want = with(want, off, p)
				}
				if k := l.readsOfBlock(3); k != 1 {
					t.Fatalf("%d reads below, want 1", k)
				}
				if !bytes.Equal(mustRead(t, c, 3), want) {
					t.Fatal("read after part writes differs")
				}
				// A block below that is absent: zeroes around the part.
				mustWritePart(t, c, 4, 7, pattern(5, 9))
				mustFlush(t, c)
				if !bytes.Equal(l.stored(3), want) || !bytes.Equal(l.stored(4), with(make([]byte, bs), 7, pattern(5, 9))) {
					t.Fatal("below differs after a flush")
				}
				if k := l.writesOfBlock(3); k != 1 {
					t.Fatalf("%d uploads of block 3, want 1", k)
				}
				// A part of zeroes that zeroes the block: written back,
				// the block is deleted below (zero), and reads zeroes.
				mustWritePart(t, c, 4, 7, make([]byte, 5))
				mustFlush(t, c)
				if !blockstore.IsZero(l.stored(4)) || !blockstore.IsZero(mustRead(t, c, 4)) {
					t.Fatal("block zeroed by a part is not zero")
				}
				st := c.Stats()
				if st.WriteMisses != 2 || st.WriteHits != 4 {
					t.Fatalf("stats %+v: want 2 write misses, 4 hits", st)
				}
			})
		})
	}
}

// A part write while the block uploads is uploaded again after, and Flush
// waits for that second upload.
func TestWritePartDuringUpload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		var first atomic.Bool
		first.Store(true)
		release, entered := make(chan struct{}), make(chan struct{})
		l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
			if first.Swap(false) {
				close(entered)
				<-release
			}
			return do()
		}
		c := newCache(t, l, Options{Size: 8, WriteDelay: 10 * time.Millisecond})
		mustWrite(t, c, 7, pattern(bs, 1))
		<-entered // uploading pattern 1
		mustWritePart(t, c, 7, 30, pattern(40, 2))
		want := with(pattern(bs, 1), 30, pattern(40, 2))
		if !bytes.Equal(mustRead(t, c, 7), want) {
			t.Fatal("read during upload: not the last write")
		}
		flushed := make(chan error)
		go func() { flushed <- c.Flush(bg) }()
		synctest.Wait()
		select {
		case err := <-flushed:
			t.Fatalf("flush returned (%v) while the part was not below", err)
		default:
		}
		close(release)
		if err := <-flushed; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(l.stored(7), want) || l.writesOfBlock(7) != 2 {
			t.Fatalf("below: part lost or %d uploads, want 2", l.writesOfBlock(7))
		}
	})
}

// A part write of a block being loaded waits for the load (the rest of
// the block comes from it) and makes no read of its own; a failed load
// makes the part write read the block itself.
func TestWritePartWaitsForLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		mustWrite(t, l.mem, 5, pattern(bs, 5))
		g := newGate(5)
		fail := true
		l.readHook = func(ctx context.Context, n uint64, do func() error) error {
			g.pass(n)
			if n == 6 && fail {
				fail = false
				return errInjected
			}
			return do()
		}
		c := newCache(t, l, Options{Size: 8, WriteDelay: time.Hour})
		read := make(chan []byte)
		go func() { read <- mustRead(t, c, 5) }()
		<-g.entered
		wrote := make(chan error)
		go func() { wrote <- c.WritePart(bg, 5, 10, pattern(20, 1)) }()
		synctest.Wait()
		select {
		case err := <-wrote:
			t.Fatalf("part write did not wait for the load (%v)", err)
		default:
		}
		g.release(5)
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		<-read // old or new: concurrent
		if !bytes.Equal(mustRead(t, c, 5), with(pattern(bs, 5), 10, pattern(20, 1))) || l.readsOfBlock(5) != 1 {
			t.Fatalf("part over a load: wrong data or %d reads below", l.readsOfBlock(5))
		}

		// A read below that fails: the part write reports it, and
		// nothing is cached.
		if err := c.WritePart(bg, 6, 0, pattern(8, 2)); err == nil {
			t.Fatal("part write of a block that cannot be read succeeded")
		}
		if c.Stats().CurrentSize != 1 || c.Stats().DirtyBlocks != 1 {
			t.Fatalf("after a failed part write: %+v", c.Stats())
		}
		mustWritePart(t, c, 6, 0, pattern(8, 2))
		if got := mustRead(t, c, 6); !bytes.Equal(got, with(make([]byte, bs), 0, pattern(8, 2))) {
			t.Fatal("part write after a failed one differs")
		}
	})
}

// A clean block recovered from a persistent slot store is verified before
// a part is written into it: its stale copy must not be the rest of the
// block.
func TestWritePartVerifies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		mustWrite(t, l.mem, 9, pattern(bs, 10)) // changed behind the cache's back
		slots := &recSlots{Slots: NewMemSlots(bs, 4)}
		_ = slots.Write(2, 9, pattern(bs, 9))
		slots.rec = []Recovered{{Slot: 2, Block: 9}}
		c := newCache(t, l, Options{Slots: slots, WriteDelay: time.Hour})
		mustWritePart(t, c, 9, 1, pattern(3, 4))
		if !bytes.Equal(mustRead(t, c, 9), with(pattern(bs, 10), 1, pattern(3, 4))) {
			t.Fatal("part written over a stale recovered copy")
		}
		if st := c.Stats(); st.Mismatch != 1 {
			t.Fatalf("stats %+v: want the copy found changed", st)
		}
	})
}

// Misuse and trivial parts.
func TestWritePartArgs(t *testing.T) {
	l := newLower(bs, 64)
	c := newCache(t, l, Options{Size: 8, WriteDelay: time.Hour})
	mustWritePart(t, c, 1, bs, nil)           // empty: nothing
	mustWritePart(t, c, 1, 0, pattern(bs, 1)) // whole: a WriteBlock
	if c.Stats().CurrentSize != 1 || l.reads.Load() != 0 {
		t.Fatalf("stats %+v, %d reads", c.Stats(), l.reads.Load())
	}
}
