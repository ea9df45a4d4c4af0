package zero

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
)

var errInjected = errors.New("injected failure")

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name  string
		lower func(bs int, n uint64) blockstore.Store
		opt   Options
	}{
		{"memstore", func(bs int, n uint64) blockstore.Store { return memstore.New(bs, n) }, Options{}},
		{"survey", func(bs int, n uint64) blockstore.Store { return surveyLower{newLower(bs, n)} }, Options{Survey: true}},
		{"bulk+survey", func(bs int, n uint64) blockstore.Store { return bothLower{newLower(bs, n)} }, Options{Survey: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			storetest.Run(t, storetest.Harness{
				New: func(t *testing.T, bs int, n uint64) blockstore.Store { return New(c.lower(bs, n), c.opt) },
				// A fresh layer over the same blocks: it must learn them
				// anew, by survey or by reading.
				Reopen: func(t *testing.T, s blockstore.Store) blockstore.Store {
					z := s.(*Store)
					if err := z.Close(); err != nil {
						t.Fatal(err)
					}
					return New(z.lower, c.opt)
				},
			})
		})
	}
}

func pattern(size int, seed byte) []byte {
	b := bytes.Repeat([]byte{seed}, size)
	b[0] = seed | 1
	return b
}

func mustRead(t *testing.T, s blockstore.Store, n uint64) []byte {
	t.Helper()
	buf := bytes.Repeat([]byte{0xee}, s.BlockSize())
	if err := s.ReadBlock(context.Background(), n, buf); err != nil {
		t.Fatalf("read block %d: %v", n, err)
	}
	return buf
}

func mustWrite(t *testing.T, s blockstore.Store, n uint64, data []byte) {
	t.Helper()
	if err := s.WriteBlock(context.Background(), n, data); err != nil {
		t.Fatalf("write block %d: %v", n, err)
	}
}

func wantPresence(t *testing.T, s *Store, n uint64, want blockstore.Presence) {
	t.Helper()
	got, err := s.Presence(context.Background(), n)
	if err != nil {
		t.Fatalf("presence of block %d: %v", n, err)
	}
	if got != want {
		t.Fatalf("presence of block %d: %v, want %v", n, got, want)
	}
}

func waitSurvey(t *testing.T, s *Store) {
	t.Helper()
	<-s.SurveyDone()
	if err := s.SurveyErr(); err != nil {
		t.Fatalf("survey: %v", err)
	}
}

// TestSurveyedFreshDisk: once surveyed, a fresh disk is read and zeroed
// entirely without a request below.
func TestSurveyedFreshDisk(t *testing.T) {
	const n = 1 << 16
	l := newLower(512, n)
	s := New(surveyLower{l}, Options{Survey: true})
	defer s.Close()
	waitSurvey(t, s)
	for b := range uint64(n) {
		if !blockstore.IsZero(mustRead(t, s, b)) {
			t.Fatalf("block %d not zero", b)
		}
		mustWrite(t, s, b, nil)
		mustWrite(t, s, b, make([]byte, 512))
	}
	if r, w := l.reads.Load(), l.writes.Load(); r != 0 || w != 0 {
		t.Fatalf("%d reads and %d writes below, want none", r, w)
	}
	wantPresence(t, s, n-1, blockstore.Absent)
	if st := s.Stats(); st.ZeroReads != n || st.DroppedWrites != 2*n || st.KnownZero != n {
		t.Fatalf("stats %+v", st)
	}
}

// TestLearning: without a survey the layer learns from reads and writes.
func TestLearning(t *testing.T) {
	l := newLower(512, 64)
	s := New(l, Options{})
	defer s.Close()
	wantPresence(t, s, 3, blockstore.Unknown) // the store below cannot tell
	mustRead(t, s, 3)
	mustRead(t, s, 3)
	if got := l.reads.Load(); got != 1 {
		t.Fatalf("%d reads below, want 1 (then known zero)", got)
	}
	wantPresence(t, s, 3, blockstore.Absent)
	mustWrite(t, s, 3, nil)
	if got := l.writes.Load(); got != 0 {
		t.Fatalf("zero write of a known-zero block went below")
	}

	mustWrite(t, s, 3, pattern(512, 3))
	wantPresence(t, s, 3, blockstore.Present)
	if !bytes.Equal(mustRead(t, s, 3), pattern(512, 3)) {
		t.Fatal("data lost")
	}
	mustWrite(t, s, 3, make([]byte, 512))
	wantPresence(t, s, 3, blockstore.Absent)
	if w := l.writes.Load(); w != 2 {
		t.Fatalf("%d writes below, want 2", w)
	}

	// A failed write may have landed: unknown, so the next zero write
	// goes below and reads go below.
	l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
		if err := do(); err != nil {
			return err
		}
		return errInjected
	}
	if err := s.WriteBlock(context.Background(), 3, pattern(512, 4)); !errors.Is(err, errInjected) {
		t.Fatalf("write: %v, want injected failure", err)
	}
	l.writeHook = nil
	wantPresence(t, s, 3, blockstore.Unknown)
	reads := l.reads.Load()
	if !bytes.Equal(mustRead(t, s, 3), pattern(512, 4)) || l.reads.Load() != reads+1 {
		t.Fatal("block of a failed write not read from below")
	}
	wantPresence(t, s, 3, blockstore.Present)
}

// TestPresenceDelegates: blocks the layer knows nothing of are asked below.
func TestPresenceDelegates(t *testing.T) {
	m := memstore.New(512, 8)
	mustWrite(t, m, 2, pattern(512, 2))
	s := New(m, Options{})
	defer s.Close()
	wantPresence(t, s, 2, blockstore.Present)
	wantPresence(t, s, 5, blockstore.Absent)
	if _, err := s.Presence(context.Background(), 8); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("presence past the end: %v, want EINVAL", err)
	}
}

// TestBulkZeroAfterSurvey: of a million blocks, only the ten stored ones
// go below, in one call.
func TestBulkZeroAfterSurvey(t *testing.T) {
	const n = 1_000_000
	l := newLower(512, n)
	var stored []uint64
	for i := range uint64(10) {
		b := i*99_991 + 7
		stored = append(stored, b)
		mustWrite(t, l.mem, b, pattern(512, byte(i)))
	}
	s := New(bothLower{l}, Options{Survey: true})
	defer s.Close()
	waitSurvey(t, s)
	all := make([]uint64, n)
	for i := range all {
		all[i] = uint64(i)
	}
	if err := s.ZeroBlocks(context.Background(), all); err != nil {
		t.Fatal(err)
	}
	if len(l.bulkCalls) != 1 || !slices.Equal(l.bulkCalls[0], stored) {
		t.Fatalf("bulk calls below %v, want one with %v", l.bulkCalls, stored)
	}
	if l.mem.Stored() != 0 || l.writes.Load() != 0 {
		t.Fatalf("%d blocks left, %d single writes", l.mem.Stored(), l.writes.Load())
	}
	if st := s.Stats(); st.DroppedWrites != n-10 || st.KnownZero != n {
		t.Fatalf("stats %+v", st)
	}
}

// TestBulkZeroWithoutSurvey: with nothing known, all blocks go below in a
// single bulk call; after it, all are known zero.
func TestBulkZeroWithoutSurvey(t *testing.T) {
	const n = 1_000_000
	l := newLower(512, n)
	s := New(bulkLower{l}, Options{})
	defer s.Close()
	all := make([]uint64, n)
	for i := range all {
		all[i] = uint64(i)
	}
	for range 2 {
		if err := s.ZeroBlocks(context.Background(), all); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.bulkCalls) != 1 || len(l.bulkCalls[0]) != n {
		t.Fatalf("%d bulk calls below, want 1 of %d blocks", len(l.bulkCalls), n)
	}
	if st := s.Stats(); st.KnownZero != n || st.DroppedWrites != n {
		t.Fatalf("stats %+v", st)
	}
	if err := s.ZeroBlocks(context.Background(), []uint64{1, n}); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("block past the end: %v, want EINVAL", err)
	}
}

// TestBulkZeroFallback: a store below without bulk zeroing gets one zero
// write per block not known zero.
func TestBulkZeroFallback(t *testing.T) {
	const n = 1000
	l := newLower(512, n)
	for b := uint64(0); b < n; b += 100 {
		mustWrite(t, l.mem, b, pattern(512, 1))
	}
	s := New(l, Options{})
	defer s.Close()
	all := make([]uint64, n)
	for i := range all {
		all[i] = uint64(i)
	}
	mustRead(t, s, 1) // known zero now: skipped below
	for range 2 {
		if err := s.ZeroBlocks(context.Background(), all); err != nil {
			t.Fatal(err)
		}
	}
	if w := l.writes.Load(); w != n-1 {
		t.Fatalf("%d writes below, want %d", w, n-1)
	}
	if l.mem.Stored() != 0 {
		t.Fatalf("%d blocks left", l.mem.Stored())
	}
	l.reads.Store(0)
	for b := range uint64(n) {
		mustRead(t, s, b)
	}
	if r := l.reads.Load(); r != 0 {
		t.Fatalf("%d reads below after zeroing, want 0", r)
	}

	// A failing zero write is reported with its block, which is then
	// unknown.
	mustWrite(t, s, 5, pattern(512, 5))
	l.writeHook = func(ctx context.Context, b uint64, data []byte, do func() error) error { return errInjected }
	err := s.ZeroBlocks(context.Background(), []uint64{4, 5})
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "block 5") {
		t.Fatalf("zero blocks: %v, want injected failure of block 5", err)
	}
	wantPresence(t, s, 5, blockstore.Unknown)
}

// TestBulkZeroFailure: a failed bulk call leaves its blocks unknown.
func TestBulkZeroFailure(t *testing.T) {
	l := newLower(512, 16)
	s := New(bulkLower{l}, Options{})
	defer s.Close()
	mustRead(t, s, 1)
	l.bulkErr = errInjected
	if err := s.ZeroBlocks(context.Background(), []uint64{1, 2, 3}); !errors.Is(err, errInjected) {
		t.Fatalf("zero blocks: %v, want injected failure", err)
	}
	if got := l.bulkCalls; len(got) != 1 || !slices.Equal(got[0], []uint64{2, 3}) {
		t.Fatalf("bulk calls %v, want [[2 3]]", got)
	}
	wantPresence(t, s, 1, blockstore.Absent)
	wantPresence(t, s, 2, blockstore.Unknown)
	wantPresence(t, s, 3, blockstore.Unknown)
}

// TestOverlappingWrites: a zero write that lands below first but returns
// last must not leave the block known zero: the data write overlapping it
// is what the store holds.
func TestOverlappingWrites(t *testing.T) {
	l := newLower(512, 16)
	stored, release := make(chan struct{}), make(chan struct{})
	l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
		err := do()
		if data == nil {
			close(stored)
			<-release
		}
		return err
	}
	s := New(l, Options{})
	defer s.Close()
	zeroDone := make(chan error)
	go func() { zeroDone <- s.WriteBlock(context.Background(), 4, nil) }()
	<-stored
	mustWrite(t, s, 4, pattern(512, 4))
	close(release)
	if err := <-zeroDone; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustRead(t, s, 4), pattern(512, 4)) {
		t.Fatal("block reads as zero but the store holds data")
	}
}

// TestReadOverlappingWrite: a read that fetched the old zeroes while a
// write landed must not record the block as zero.
func TestReadOverlappingWrite(t *testing.T) {
	l := newLower(512, 16)
	fetched, release := make(chan struct{}), make(chan struct{})
	l.readHook = func(ctx context.Context, n uint64, do func() error) error {
		err := do()
		if n == 6 {
			l.readHook = nil // only the first read waits
			close(fetched)
			<-release
		}
		return err
	}
	s := New(l, Options{})
	defer s.Close()
	readDone := make(chan []byte)
	go func() {
		buf := make([]byte, 512)
		if err := s.ReadBlock(context.Background(), 6, buf); err != nil {
			t.Error(err)
		}
		readDone <- buf
	}()
	<-fetched
	mustWrite(t, s, 6, pattern(512, 6))
	close(release)
	if old := <-readDone; !blockstore.IsZero(old) {
		t.Fatal("the overlapping read saw neither old nor new data")
	}
	if !bytes.Equal(mustRead(t, s, 6), pattern(512, 6)) {
		t.Fatal("block reads as zero but the store holds data")
	}
}

type prefetchLower struct {
	*lower
	got [][2]uint64
}

func (p *prefetchLower) Prefetch(ctx context.Context, first, count uint64) error {
	p.got = append(p.got, [2]uint64{first, count})
	return nil
}

func TestPrefetchAndFlush(t *testing.T) {
	p := &prefetchLower{lower: newLower(512, 16)}
	s := New(p, Options{})
	defer s.Close()
	if err := s.Prefetch(context.Background(), 3, 4); err != nil {
		t.Fatal(err)
	}
	if len(p.got) != 1 || p.got[0] != [2]uint64{3, 4} {
		t.Fatalf("prefetches below: %v", p.got)
	}
	if err := New(newLower(512, 16), Options{}).Prefetch(context.Background(), 0, 1); err != nil {
		t.Fatalf("prefetch without a prefetcher below: %v", err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}
