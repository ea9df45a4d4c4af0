package zero

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

var (
	// ErrNoSurvey is SurveyErr's answer when no survey ran: not asked
	// for, or the store below cannot list its blocks.
	ErrNoSurvey = errors.New("no survey of stored blocks ran")
	// ErrSurveyRunning is SurveyErr's answer while the survey runs.
	ErrSurveyRunning = errors.New("survey of stored blocks still running")
)

// survey is the background listing of stored blocks.
//
// Why it never marks a block zero that holds data: settling trusts the
// listing only for blocks still unknown when it ends, and nothing ever
// makes a block unknown again; a write puts its block in doubt before it
// goes below (beginWrite), and reads change nothing below. So a block
// unknown at the end had no write from this layer, finished or in flight,
// since the process started, and whether it is stored has not changed
// while the listing ran (the mount token keeps other writers out).
// Settling converts only unknown fields, with a compare-and-swap per
// bitmap word, so a write starting meanwhile either puts its block in
// doubt first (settling then leaves it) or starts after, and its end
// records its own outcome over whatever settling decided.
type survey struct {
	cancel  context.CancelFunc
	done    chan struct{}
	err     error       // written before done is closed
	settled atomic.Bool // completed and applied to the bitmap
	reports atomic.Uint64
}

func (s *Store) startSurvey(want bool) {
	s.survey.done = make(chan struct{})
	sv, ok := s.lower.(blockstore.Surveyor)
	if !want || !ok {
		if want {
			s.log.Warn("--listBlocks: the store below cannot list its blocks; no survey")
		}
		s.survey.err = ErrNoSurvey
		s.survey.cancel = func() {}
		close(s.survey.done)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.survey.cancel = cancel
	go func() {
		defer close(s.survey.done)
		s.survey.err = s.runSurvey(ctx, sv)
	}()
}

func (s *Store) runSurvey(ctx context.Context, sv blockstore.Surveyor) error {
	start := time.Now()
	n := s.NumBlocks()
	reported := newBitSet(n)
	count := &s.survey.reports
	err := sv.Survey(ctx, func(b uint64) {
		if b < n { // a block beyond the disk is none of ours
			reported.add(b)
			count.Add(1)
		}
	})
	if err == nil {
		// A listing cut short must not pass for complete, even if the
		// store below returned nil.
		err = ctx.Err()
	}
	if err != nil {
		err = fmt.Errorf("survey of stored blocks: %w", err)
		level := slog.LevelWarn
		if errors.Is(err, context.Canceled) {
			level = slog.LevelInfo
		}
		s.log.Log(context.Background(), level, "survey ended early; no block learned from it", "err", err)
		return err
	}
	zeroed, stored := s.states.settle(reported)
	s.survey.settled.Store(true)
	s.log.Info("survey of stored blocks complete",
		slog.Uint64("reports", count.Load()), slog.Uint64("stored", stored),
		slog.Uint64("zero", zeroed), slog.Duration("elapsed", time.Since(start)))
	return nil
}

func (s *Store) stopSurvey() {
	s.survey.cancel()
	<-s.survey.done
}

// SurveyDone is closed when the survey has ended (at once if none runs).
func (s *Store) SurveyDone() <-chan struct{} { return s.survey.done }

// SurveyErr is the survey's outcome: nil once it completed and the bitmap
// learned from it, ErrSurveyRunning before, ErrNoSurvey if none ran, else
// why it failed (wrapping context.Canceled after Close).
func (s *Store) SurveyErr() error {
	select {
	case <-s.survey.done:
		return s.survey.err
	default:
		return ErrSurveyRunning
	}
}
