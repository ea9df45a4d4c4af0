package storetest

import (
	"bytes"
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// runPartWrites checks WritePart against a model block: parts at the
// start, the middle and the end of unwritten, written and zeroed blocks,
// parts of zeroes (which may make the block a zero block), that the
// caller may reuse its buffer, flushed parts surviving a reopen, and
// misuse.
// It closes s (or what Reopen made of it) when the test ends.
func runPartWrites(t *testing.T, h Harness, s blockstore.Store) {
	t.Cleanup(func() { _ = s.Close() }) // s as it is at the end
	pw := s.(blockstore.PartWriter)
	bs := s.BlockSize()
	ctx := context.Background()
	model := map[uint64][]byte{}
	get := func(n uint64) []byte {
		if model[n] == nil {
			model[n] = make([]byte, bs)
		}
		return model[n]
	}
	part := func(n uint64, off int, p []byte) {
		t.Helper()
		buf := bytes.Clone(p)
		if err := pw.WritePart(ctx, n, off, buf); err != nil {
			t.Fatalf("block %d: write %d bytes at %d: %v", n, len(p), off, err)
		}
		for i := range buf {
			buf[i] ^= 0x5a // the store must not have kept it
		}
		copy(get(n)[off:], p)
	}
	check := func(s blockstore.Store, n uint64) {
		t.Helper()
		if got := read(t, s, n); !bytes.Equal(got, get(n)) {
			t.Fatalf("block %d reads back different data after part writes", n)
		}
		if pr, ok := s.(blockstore.PartReader); ok {
			p := make([]byte, 100)
			if err := pr.ReadPart(ctx, n, bs/3, p); err != nil || !bytes.Equal(p, get(n)[bs/3:bs/3+100]) {
				t.Fatalf("block %d: part read after part writes differs (%v)", n, err)
			}
		}
		// A block zeroed by a part may still be Present (until a cache
		// writes it back), but data is never Absent.
		if p, ok := presence(t, s, n); ok && p == blockstore.Absent && !blockstore.IsZero(get(n)) {
			t.Fatalf("block %d holds data but presence is Absent", n)
		}
	}

	// An unwritten block: its rest reads as zeroes.
	part(20, 0, pattern(100, 1))
	check(s, 20)
	part(20, bs-7, pattern(7, 2))
	part(20, bs/2, pattern(512, 3))
	check(s, 20)
	// A written block keeps its rest.
	write(t, s, 21, pattern(bs, 21))
	copy(get(21), pattern(bs, 21))
	part(21, 1, pattern(bs-2, 4))
	check(s, 21)
	part(21, bs/2, make([]byte, 64)) // zeroes inside data
	check(s, 21)
	// A zeroed block, then parts of zeroes that make it zero again.
	write(t, s, 22, pattern(bs, 22))
	write(t, s, 22, nil)
	check(s, 22)
	part(22, 5, make([]byte, 10)) // zeroes on a zero block: still zero
	check(s, 22)
	part(22, 10, pattern(20, 5))
	check(s, 22)
	part(22, 10, make([]byte, 20))
	check(s, 22)
	// A whole block and an empty part.
	part(23, 0, pattern(bs, 6))
	check(s, 23)
	part(23, bs, nil)
	part(23, 0, nil)
	check(s, 23)
	// Whole-block writes after parts replace everything.
	write(t, s, 20, pattern(bs, 7))
	copy(get(20), pattern(bs, 7))
	check(s, 20)

	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if h.Reopen != nil {
		s = h.Reopen(t, s)
		for _, n := range []uint64{20, 21, 22, 23} {
			check(s, n)
		}
		var ok bool
		if pw, ok = s.(blockstore.PartWriter); !ok {
			return
		}
	}
	for _, bad := range []struct {
		n   uint64
		off int
		len int
	}{{testNumBlocks, 0, 1}, {0, -1, 1}, {0, bs + 1, 0}, {0, 1, bs}, {0, 0, bs + 1}} {
		if err := pw.WritePart(ctx, bad.n, bad.off, make([]byte, bad.len)); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("block %d: write %d bytes at %d: %v, want EINVAL", bad.n, bad.len, bad.off, err)
		}
	}
}
