package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// GiveUpError is returned when an operation still fails once the pause
// budget is spent. It unwraps to the last error.
type GiveUpError struct {
	Op, Key  string
	Attempts int
	Elapsed  time.Duration // from the first attempt to giving up
	Err      error         // the last attempt's error
}

func (e *GiveUpError) Error() string {
	return fmt.Sprintf("%s %s: giving up after %d attempts in %s: %v",
		e.Op, e.Key, e.Attempts, e.Elapsed.Round(time.Millisecond), e.Err)
}

func (e *GiveUpError) Unwrap() error { return e.Err }

// finalError carries an error that must not be retried although
// backend.IsPermanent does not know it (a List callback's own error).
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }

// do runs attempt until it succeeds, fails for good, the caller's ctx ends
// or the pause budget is spent. If progressed is not nil and reports that
// a failed attempt got somewhere, the schedule starts over: a long listing
// gets a full budget for each stretch, as s3backer's per-page requests do.
func (b *Backend) do(ctx context.Context, op, key string, progressed func() bool, attempt func() error) error {
	bo := backoff{initial: b.initial, budget: b.budget, rand: b.rand}
	start := b.clock.Now()
	for n := 1; ; n++ {
		b.attempts.Add(1)
		err := attempt()
		if err == nil {
			return nil
		}
		if f, ok := err.(*finalError); ok {
			return f.err
		}
		if backend.IsPermanent(err) {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			// The caller's deadline or cancel, not the store's fault.
			if errors.Is(err, cerr) {
				return err
			}
			return fmt.Errorf("%s %s: stopped after %d attempts: %w (last error: %w)", op, key, n, cerr, err)
		}
		if progressed != nil && progressed() {
			bo = backoff{initial: b.initial, budget: b.budget, rand: b.rand}
			start, n = b.clock.Now(), 1
		}
		pause, ok := bo.next()
		if !ok {
			b.giveUps.Add(1)
			g := &GiveUpError{Op: op, Key: key, Attempts: n, Elapsed: b.clock.Now().Sub(start), Err: err}
			b.log.LogAttrs(ctx, slog.LevelWarn, "giving up", slog.String("op", op), slog.String("key", key),
				slog.Int("attempts", n), slog.Duration("elapsed", g.Elapsed), slog.Any("err", err))
			return g
		}
		b.log.LogAttrs(ctx, slog.LevelDebug, "retrying", slog.String("op", op), slog.String("key", key),
			slog.Int("attempt", n), slog.Duration("pause", pause), slog.Any("err", err))
		t0 := b.clock.Now()
		serr := b.clock.Sleep(ctx, pause)
		b.delay.Add(int64(b.clock.Now().Sub(t0)))
		if serr != nil {
			return fmt.Errorf("%s %s: stopped after %d attempts: %w (last error: %w)", op, key, n, serr, err)
		}
		b.retries.Add(1)
	}
}
