package zero

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// TestSurveyRace drives writes into every window of a survey: before the
// listing passes, after it passed, a deletion after it reported a block, a
// write still in flight when the survey completes, and a failed write that
// landed anyway. None of them may end up known zero with data below.
func TestSurveyRace(t *testing.T) {
	const (
		bs                                = 512
		blkBefore, blkAfter, blkKept      = 1, 2, 3
		blkDeleted, blkInFlight, blkFails = 4, 5, 6
		blkUntouched                      = 7
	)
	l := newLower(bs, 64)
	mustWrite(t, l.mem, blkKept, pattern(bs, blkKept))
	mustWrite(t, l.mem, blkDeleted, pattern(bs, blkDeleted))

	scan, scanned, report := make(chan struct{}), make(chan struct{}), make(chan struct{})
	l.survey = func(ctx context.Context, fn func(uint64)) error {
		<-scan
		seen := l.stored() // the listing passes every block here
		close(scanned)
		select {
		case <-report:
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, n := range seen {
			fn(n)
		}
		return nil
	}
	inFlight, landed := make(chan struct{}), make(chan struct{})
	l.writeHook = func(ctx context.Context, n uint64, data []byte, do func() error) error {
		switch n {
		case blkInFlight:
			close(inFlight)
			<-landed
			return do()
		case blkFails:
			if err := do(); err != nil {
				return err
			}
			return errInjected
		}
		return do()
	}
	s := New(surveyLower{l}, Options{Survey: true})
	defer s.Close()
	if err := s.SurveyErr(); !errors.Is(err, ErrSurveyRunning) {
		t.Fatalf("survey error while running: %v", err)
	}

	mustWrite(t, s, blkBefore, pattern(bs, blkBefore))
	close(scan)
	<-scanned
	mustWrite(t, s, blkAfter, pattern(bs, blkAfter))
	mustWrite(t, s, blkDeleted, nil)
	if err := s.WriteBlock(context.Background(), blkFails, pattern(bs, blkFails)); !errors.Is(err, errInjected) {
		t.Fatalf("write: %v, want injected failure", err)
	}
	wrote := make(chan error)
	go func() { wrote <- s.WriteBlock(context.Background(), blkInFlight, pattern(bs, blkInFlight)) }()
	<-inFlight
	close(report)
	waitSurvey(t, s)
	// A write in flight keeps its block in doubt, never Absent; and a
	// block whose failed write may have landed counts as stored.
	wantPresence(t, s, blkInFlight, blockstore.Present)
	wantPresence(t, s, blkFails, blockstore.Present)
	close(landed)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}

	for _, n := range []uint64{blkBefore, blkAfter, blkKept, blkInFlight, blkFails} {
		if !bytes.Equal(mustRead(t, s, n), pattern(bs, byte(n))) {
			t.Errorf("block %d lost its data", n)
		}
		wantPresence(t, s, n, blockstore.Present)
	}
	for _, n := range []uint64{blkDeleted, blkUntouched} {
		wantPresence(t, s, n, blockstore.Absent)
	}
	reads := l.reads.Load()
	if !blockstore.IsZero(mustRead(t, s, blkUntouched)) || !blockstore.IsZero(mustRead(t, s, blkDeleted)) {
		t.Fatal("zero block reads as data")
	}
	if l.reads.Load() != reads {
		t.Fatal("known-zero blocks were read from below")
	}
	if got, want := s.Stats().KnownZero, uint64(64-5); got != want {
		t.Fatalf("%d blocks known zero, want %d", got, want)
	}
}

// TestSurveyConcurrentWrites: many writers race a survey that reports from
// several goroutines; every written block keeps its data.
func TestSurveyConcurrentWrites(t *testing.T) {
	const bs, n, writers = 512, 4096, 8
	l := newLower(bs, n)
	start := make(chan struct{})
	l.survey = func(ctx context.Context, fn func(uint64)) error {
		<-start
		done := make(chan struct{})
		for w := range 4 {
			go func() {
				defer func() { done <- struct{}{} }()
				for _, b := range l.stored() {
					if int(b)%4 == w {
						fn(b)
					}
				}
			}()
		}
		for range 4 {
			<-done
		}
		return nil
	}
	s := New(surveyLower{l}, Options{Survey: true})
	defer s.Close()
	finished := make(chan struct{}, writers)
	for w := range writers {
		go func() {
			defer func() { finished <- struct{}{} }()
			for b := uint64(w); b < n; b += writers {
				if b == n/2 {
					close(start) // the survey runs while half is written
				}
				if err := s.WriteBlock(context.Background(), b, pattern(bs, byte(b|1))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range writers {
		<-finished
	}
	waitSurvey(t, s)
	for b := range uint64(n) {
		if !bytes.Equal(mustRead(t, s, b), pattern(bs, byte(b|1))) {
			t.Fatalf("block %d lost its data", b)
		}
	}
	if k := s.Stats().KnownZero; k != 0 {
		t.Fatalf("%d blocks known zero, all hold data", k)
	}
}

// TestSurveyFailure: a survey that fails after reporting blocks teaches
// the bitmap nothing.
func TestSurveyFailure(t *testing.T) {
	l := newLower(512, 64)
	mustWrite(t, l.mem, 1, pattern(512, 1))
	l.survey = func(ctx context.Context, fn func(uint64)) error {
		fn(1)
		return errInjected
	}
	s := New(surveyLower{l}, Options{Survey: true})
	defer s.Close()
	<-s.SurveyDone()
	if err := s.SurveyErr(); !errors.Is(err, errInjected) {
		t.Fatalf("survey error %v, want injected failure", err)
	}
	if k := s.Stats().KnownZero; k != 0 {
		t.Fatalf("%d blocks known zero after a failed survey", k)
	}
	wantPresence(t, s, 1, blockstore.Unknown)
	wantPresence(t, s, 9, blockstore.Unknown)
	mustRead(t, s, 9)
	if r := l.reads.Load(); r != 1 {
		t.Fatalf("%d reads below, want 1: nothing was known", r)
	}
}

// TestCloseDuringSurvey: Close cancels a running survey and waits for it;
// a listing cut short counts as failed even if the store below says nil.
func TestCloseDuringSurvey(t *testing.T) {
	l := newLower(512, 64)
	running := make(chan struct{})
	l.survey = func(ctx context.Context, fn func(uint64)) error {
		close(running)
		<-ctx.Done()
		return nil
	}
	s := New(surveyLower{l}, Options{Survey: true})
	<-running
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // a hang guard, not synchronisation
		t.Fatal("Close did not stop the survey")
	}
	if err := s.SurveyErr(); !errors.Is(err, context.Canceled) {
		t.Fatalf("survey error %v, want canceled", err)
	}
	if k := s.Stats().KnownZero; k != 0 {
		t.Fatalf("%d blocks known zero after a cancelled survey", k)
	}
}

// TestNoSurvey: without a survey, or a store below that can list, the
// survey is done at once with ErrNoSurvey.
func TestNoSurvey(t *testing.T) {
	for _, s := range []*Store{
		New(surveyLower{newLower(512, 8)}, Options{}),
		New(newLower(512, 8), Options{Survey: true}),
	} {
		<-s.SurveyDone()
		if err := s.SurveyErr(); !errors.Is(err, ErrNoSurvey) {
			t.Fatalf("survey error %v, want ErrNoSurvey", err)
		}
		wantPresence(t, s, 0, blockstore.Unknown)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
