// Package storetest is the conformance suite every blockstore.Store — each
// backend and each layer — must pass. A backend's test calls Run with a
// factory; the suite exercises the whole contract documented on Store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Harness tells the suite how to make stores of the implementation under
// test.
type Harness struct {
	// New returns an empty store of the given geometry. Closed by the suite.
	New func(t *testing.T, blockSize int, numBlocks uint64) blockstore.Store
	// Reopen, if set, closes s and opens the same storage again; the suite
	// then checks that flushed data survives.
	Reopen func(t *testing.T, s blockstore.Store) blockstore.Store
}

const (
	testBlockSize = 4096
	testNumBlocks = 64
)

// pattern fills a block with bytes derived from seed, never all zero.
func pattern(size int, seed byte) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = seed ^ byte(i*7) ^ byte(i>>8)
	}
	b[0] = seed | 1
	return b
}

func read(t *testing.T, s blockstore.Store, n uint64) []byte {
	t.Helper()
	buf := make([]byte, s.BlockSize())
	if err := s.ReadBlock(context.Background(), n, buf); err != nil {
		t.Fatalf("read block %d: %v", n, err)
	}
	return buf
}

func write(t *testing.T, s blockstore.Store, n uint64, data []byte) {
	t.Helper()
	if err := s.WriteBlock(context.Background(), n, data); err != nil {
		t.Fatalf("write block %d: %v", n, err)
	}
}

func presence(t *testing.T, s blockstore.Store, n uint64) (blockstore.Presence, bool) {
	t.Helper()
	p, ok := s.(blockstore.Prober)
	if !ok {
		return blockstore.Unknown, false
	}
	got, err := p.Presence(context.Background(), n)
	if err != nil {
		t.Fatalf("presence of block %d: %v", n, err)
	}
	return got, true
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	newStore := func(t *testing.T) blockstore.Store {
		s := h.New(t, testBlockSize, testNumBlocks)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	t.Run("Geometry", func(t *testing.T) {
		s := newStore(t)
		if s.BlockSize() != testBlockSize || s.NumBlocks() != testNumBlocks {
			t.Fatalf("geometry %d x %d, want %d x %d", s.NumBlocks(), s.BlockSize(), testNumBlocks, testBlockSize)
		}
	})
	t.Run("UnwrittenReadsZero", func(t *testing.T) {
		s := newStore(t)
		for _, n := range []uint64{0, 1, testNumBlocks - 1} {
			buf := bytes.Repeat([]byte{0xee}, testBlockSize) // stale bytes must be overwritten
			if err := s.ReadBlock(context.Background(), n, buf); err != nil {
				t.Fatalf("read block %d: %v", n, err)
			}
			if !blockstore.IsZero(buf) {
				t.Fatalf("unwritten block %d is not zero", n)
			}
			if p, ok := presence(t, s, n); ok && p != blockstore.Absent {
				t.Fatalf("unwritten block %d: presence %v, want Absent", n, p)
			}
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		for _, n := range []uint64{0, 1, 17, testNumBlocks - 1} {
			write(t, s, n, pattern(testBlockSize, byte(n)))
		}
		for _, n := range []uint64{0, 1, 17, testNumBlocks - 1} {
			if !bytes.Equal(read(t, s, n), pattern(testBlockSize, byte(n))) {
				t.Fatalf("block %d reads back different data", n)
			}
			if p, ok := presence(t, s, n); ok && p != blockstore.Present {
				t.Fatalf("written block %d: presence %v, want Present", n, p)
			}
		}
		if !blockstore.IsZero(read(t, s, 2)) {
			t.Fatal("block 2 was never written but is not zero")
		}
	})
	t.Run("Overwrite", func(t *testing.T) {
		s := newStore(t)
		write(t, s, 5, pattern(testBlockSize, 1))
		write(t, s, 5, pattern(testBlockSize, 2))
		if !bytes.Equal(read(t, s, 5), pattern(testBlockSize, 2)) {
			t.Fatal("overwrite lost")
		}
	})
	t.Run("CallerMayReuseBuffer", func(t *testing.T) {
		s := newStore(t)
		data := pattern(testBlockSize, 3)
		write(t, s, 4, data)
		want := bytes.Clone(data)
		for i := range data {
			data[i] = 0x55
		}
		if !bytes.Equal(read(t, s, 4), want) {
			t.Fatal("store kept a reference to the caller's buffer")
		}
	})
	t.Run("ZeroWritesRemoveBlocks", func(t *testing.T) {
		s := newStore(t)
		for _, zero := range [][]byte{nil, make([]byte, testBlockSize)} {
			write(t, s, 9, pattern(testBlockSize, 9))
			write(t, s, 9, zero)
			if !blockstore.IsZero(read(t, s, 9)) {
				t.Fatalf("block 9 not zero after zero write (nil=%v)", zero == nil)
			}
			if p, ok := presence(t, s, 9); ok && p != blockstore.Absent {
				t.Fatalf("zero block 9 still stored (presence %v)", p)
			}
		}
		// Zeroing a block that was never written is fine too.
		write(t, s, 10, nil)
	})
	t.Run("BadArguments", func(t *testing.T) {
		s := newStore(t)
		buf := make([]byte, testBlockSize)
		if err := s.ReadBlock(context.Background(), testNumBlocks, buf); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("read past end: %v, want EINVAL", err)
		}
		if err := s.WriteBlock(context.Background(), testNumBlocks, buf); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("write past end: %v, want EINVAL", err)
		}
		if err := s.ReadBlock(context.Background(), 0, buf[:10]); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("short read buffer: %v, want EINVAL", err)
		}
		if err := s.WriteBlock(context.Background(), 0, buf[:10]); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("short write buffer: %v, want EINVAL", err)
		}
	})
	t.Run("ConcurrentBlocksAreAtomic", func(t *testing.T) {
		s := newStore(t)
		// Writers fill blocks with one repeated byte; a reader must only ever
		// see a whole block of one value (or zeroes).
		const rounds = 40
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					n := uint64((r + w) % 4)
					v := byte(1 + (w*rounds+r)%250)
					if err := s.WriteBlock(context.Background(), n, bytes.Repeat([]byte{v}, testBlockSize)); err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		for rd := 0; rd < 2; rd++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, testBlockSize)
				for r := 0; r < rounds*2; r++ {
					n := uint64(r % 4)
					if err := s.ReadBlock(context.Background(), n, buf); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(buf, bytes.Repeat(buf[:1], testBlockSize)) {
						errs <- fmt.Errorf("block %d: torn read", n)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
	t.Run("FlushAndClose", func(t *testing.T) {
		s := h.New(t, testBlockSize, testNumBlocks)
		write(t, s, 3, pattern(testBlockSize, 3))
		if err := s.Flush(context.Background()); err != nil {
			t.Fatalf("flush: %v", err)
		}
		if h.Reopen != nil {
			s = h.Reopen(t, s)
			if !bytes.Equal(read(t, s, 3), pattern(testBlockSize, 3)) {
				t.Fatal("flushed block lost across reopen")
			}
			if !blockstore.IsZero(read(t, s, 4)) {
				t.Fatal("unwritten block not zero after reopen")
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	})
	t.Run("PartReads", func(t *testing.T) {
		s := newStore(t)
		pr, ok := s.(blockstore.PartReader)
		if !ok {
			t.Skip("not a blockstore.PartReader")
		}
		runPartReads(t, s, pr)
	})
	t.Run("PartWrites", func(t *testing.T) {
		s := h.New(t, testBlockSize, testNumBlocks)
		if _, ok := s.(blockstore.PartWriter); !ok {
			_ = s.Close()
			t.Skip("not a blockstore.PartWriter")
		}
		runPartWrites(t, h, s)
	})
	t.Run("CanceledContext", func(t *testing.T) {
		s := newStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		buf := make([]byte, testBlockSize)
		// A store may finish a cheap operation anyway, but must not report
		// success for a write it did not do: if it says ok, the data is there.
		if err := s.WriteBlock(ctx, 6, pattern(testBlockSize, 6)); err == nil {
			if !bytes.Equal(read(t, s, 6), pattern(testBlockSize, 6)) {
				t.Fatal("write under a canceled context reported success but was lost")
			}
		}
		_ = s.ReadBlock(ctx, 6, buf)
	})
}

// runPartReads checks ReadPart against ReadBlock: parts at the start, the
// middle and the end of written, rewritten, zeroed and unwritten blocks,
// and misuse.
func runPartReads(t *testing.T, s blockstore.Store, pr blockstore.PartReader) {
	bs := s.BlockSize()
	parts := []struct{ off, n int }{{0, bs}, {0, 1}, {0, 100}, {bs / 2, 512}, {bs - 7, 7}, {bs, 0}, {1, bs - 1}}
	check := func(n uint64, want []byte) {
		t.Helper()
		for _, pt := range parts {
			p := bytes.Repeat([]byte{0xee}, pt.n) // stale bytes must be overwritten
			if err := pr.ReadPart(context.Background(), n, pt.off, p); err != nil {
				t.Fatalf("block %d: read %d bytes at %d: %v", n, pt.n, pt.off, err)
			}
			if !bytes.Equal(p, want[pt.off:pt.off+pt.n]) {
				t.Fatalf("block %d: %d bytes at %d differ from the block's", n, pt.n, pt.off)
			}
		}
	}
	check(11, make([]byte, bs)) // never written
	write(t, s, 11, pattern(bs, 11))
	check(11, pattern(bs, 11))
	write(t, s, 11, pattern(bs, 12))
	check(11, pattern(bs, 12))
	write(t, s, 11, nil)
	check(11, make([]byte, bs))
	// A part read first, then the whole block: both see the same data.
	write(t, s, 12, pattern(bs, 13))
	check(12, pattern(bs, 13))
	if !bytes.Equal(read(t, s, 12), pattern(bs, 13)) {
		t.Fatal("block 12 reads back different data after part reads")
	}
	for _, bad := range []struct {
		n   uint64
		off int
		len int
	}{{testNumBlocks, 0, 1}, {0, -1, 1}, {0, bs + 1, 0}, {0, 1, bs}, {0, 0, bs + 1}} {
		if err := pr.ReadPart(context.Background(), bad.n, bad.off, make([]byte, bad.len)); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("block %d: read %d bytes at %d: %v, want EINVAL", bad.n, bad.len, bad.off, err)
		}
	}
}
