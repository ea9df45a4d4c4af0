package zero

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
)

// partLower is a lower that reads parts of blocks (as the cache does),
// counting them.
type partLower struct {
	*lower
	parts atomic.Int64
}

func (p *partLower) ReadPart(ctx context.Context, n uint64, off int, b []byte) error {
	if err := blockstore.CheckPart(p, n, off, b); err != nil {
		return err
	}
	p.parts.Add(1)
	buf := make([]byte, p.BlockSize())
	if err := p.mem.ReadBlock(ctx, n, buf); err != nil {
		return err
	}
	copy(b, buf[off:])
	return nil
}

func TestConformanceOverPartReader(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, bs int, n uint64) blockstore.Store {
			return New(&partLower{lower: newLower(bs, n)}, Options{})
		},
	})
}

func readPart(t *testing.T, s *Store, n uint64, off, size int) []byte {
	t.Helper()
	p := bytes.Repeat([]byte{0xee}, size)
	if err := s.ReadPart(context.Background(), n, off, p); err != nil {
		t.Fatalf("block %d: read %d bytes at %d: %v", n, size, off, err)
	}
	return p
}

// TestReadPartDelegates: parts of unknown and stored blocks come from the
// store below's ReadPart, known-zero blocks make no request, and a part
// holding data teaches that the block is stored.
func TestReadPartDelegates(t *testing.T) {
	l := &partLower{lower: newLower(512, 16)}
	s := New(l, Options{})
	defer s.Close()
	if err := l.mem.WriteBlock(context.Background(), 2, pattern(512, 2)); err != nil {
		t.Fatal(err)
	}
	if got := readPart(t, s, 2, 100, 50); !bytes.Equal(got, pattern(512, 2)[100:150]) {
		t.Fatal("part of block 2 differs")
	}
	wantPresence(t, s, 2, blockstore.Present)
	// Block 3 is absent below, but a zero part proves nothing about the
	// rest of it: still unknown.
	if got := readPart(t, s, 3, 0, 64); !blockstore.IsZero(got) {
		t.Fatal("part of an absent block is not zero")
	}
	wantPresence(t, s, 3, blockstore.Unknown)
	if p, r := l.parts.Load(), l.reads.Load(); p != 2 || r != 0 {
		t.Fatalf("%d part reads and %d block reads below, want 2 and 0", p, r)
	}
	// Known zero (a zero write): answered here.
	mustWrite(t, s, 4, nil)
	if got := readPart(t, s, 4, 10, 20); !blockstore.IsZero(got) {
		t.Fatal("part of a known-zero block is not zero")
	}
	if p := l.parts.Load(); p != 2 {
		t.Fatalf("%d part reads below, want 2: a known-zero block went below", p)
	}
	if st := s.Stats(); st.ZeroReads != 1 {
		t.Fatalf("%d zero reads, want 1", st.ZeroReads)
	}
}

// TestReadPartWithoutPartReader: below a store that reads only whole
// blocks, a part read reads the block and learns from it as ReadBlock
// does.
func TestReadPartWithoutPartReader(t *testing.T) {
	l := newLower(512, 16)
	s := New(l, Options{})
	defer s.Close()
	if got := readPart(t, s, 5, 500, 12); !blockstore.IsZero(got) {
		t.Fatal("part of an absent block is not zero")
	}
	wantPresence(t, s, 5, blockstore.Absent)
	readPart(t, s, 5, 0, 512)
	if r := l.reads.Load(); r != 1 {
		t.Fatalf("%d block reads below, want 1 (then known zero)", r)
	}
	mustWrite(t, s, 6, pattern(512, 6))
	if got := readPart(t, s, 6, 1, 511); !bytes.Equal(got, pattern(512, 6)[1:]) {
		t.Fatal("part of block 6 differs")
	}
}
