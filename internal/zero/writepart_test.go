package zero

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
)

// partWriteLower is a lower that writes parts of blocks (as the cache
// does), counting them; fail makes the next one fail.
type partWriteLower struct {
	*lower
	parts atomic.Int64
	fail  atomic.Bool
}

var errPart = errors.New("injected part failure")

func (p *partWriteLower) WritePart(ctx context.Context, n uint64, off int, b []byte) error {
	if err := blockstore.CheckPart(p, n, off, b); err != nil {
		return err
	}
	p.parts.Add(1)
	if p.fail.Swap(false) {
		return errPart
	}
	buf := make([]byte, p.BlockSize())
	if err := p.mem.ReadBlock(ctx, n, buf); err != nil {
		return err
	}
	copy(buf[off:], b)
	return p.mem.WriteBlock(ctx, n, buf)
}

func TestConformanceOverPartWriter(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, bs int, n uint64) blockstore.Store {
			return New(&partWriteLower{lower: newLower(bs, n)}, Options{})
		},
	})
}

func writePart(t *testing.T, s *Store, n uint64, off int, p []byte) {
	t.Helper()
	if err := s.WritePart(context.Background(), n, off, p); err != nil {
		t.Fatalf("block %d: write %d bytes at %d: %v", n, len(p), off, err)
	}
}

// Known-zero blocks: a part of zeroes makes no request; a part of data
// goes down as a whole block with zeroes around it (no read, no part
// write below) and makes the block known present. Other blocks go to
// the store below's WritePart; a part of zeroes or a failure leaves the
// block in doubt.
func TestWritePart(t *testing.T) {
	ctx := context.Background()
	l := &partWriteLower{lower: newLower(512, 16)}
	s := New(l, Options{})
	defer s.Close()
	buf := make([]byte, 512)
	if err := s.ReadBlock(ctx, 1, buf); err != nil { // learn: zero
		t.Fatal(err)
	}
	reads := l.reads.Load()

	writePart(t, s, 1, 10, make([]byte, 20))
	if l.writes.Load() != 0 || l.parts.Load() != 0 || s.states.get(1) != zero {
		t.Fatal("zero part of a known-zero block made a request")
	}
	writePart(t, s, 1, 10, pattern(20, 1))
	want := make([]byte, 512)
	copy(want[10:], pattern(20, 1))
	if l.writes.Load() != 1 || l.parts.Load() != 0 || l.reads.Load() != reads {
		t.Fatalf("data part of a known-zero block: %d writes, %d parts, %d reads; want one whole write",
			l.writes.Load(), l.parts.Load(), l.reads.Load()-reads)
	}
	if s.states.get(1) != present || !bytes.Equal(l.stored1(t, 1), want) {
		t.Fatal("block 1 not known present with the part")
	}

	writePart(t, s, 1, 100, pattern(5, 2))
	copy(want[100:], pattern(5, 2))
	if l.parts.Load() != 1 || s.states.get(1) != present || !bytes.Equal(l.stored1(t, 1), want) {
		t.Fatal("data part of a stored block: not a part write below, or wrong state")
	}
	writePart(t, s, 1, 100, make([]byte, 5))
	if s.states.get(1) != doubt {
		t.Fatal("a zero part of a stored block must leave it in doubt")
	}
	l.fail.Store(true)
	if err := s.WritePart(ctx, 2, 0, pattern(5, 3)); !errors.Is(err, errPart) || s.states.get(2) != doubt {
		t.Fatalf("failed part write: %v, state %v", err, s.states.get(2))
	}
}

// Over a store that cannot write parts, a part is a read-modify-write of
// the whole block, learning what the read says.
func TestWritePartWhole(t *testing.T) {
	l := newLower(512, 16)
	if err := l.mem.WriteBlock(context.Background(), 3, pattern(512, 3)); err != nil {
		t.Fatal(err)
	}
	s := New(l, Options{})
	defer s.Close()
	writePart(t, s, 3, 7, pattern(9, 4))
	want := pattern(512, 3)
	copy(want[7:], pattern(9, 4))
	if l.reads.Load() != 1 || l.writes.Load() != 1 || !bytes.Equal(l.stored1(t, 3), want) || s.states.get(3) != present {
		t.Fatalf("%d reads, %d writes; want one of each and the part", l.reads.Load(), l.writes.Load())
	}
}

func (l *lower) stored1(t *testing.T, n uint64) []byte {
	t.Helper()
	buf := make([]byte, l.BlockSize())
	if err := l.mem.ReadBlock(context.Background(), n, buf); err != nil {
		t.Fatal(err)
	}
	return buf
}
