package retry

import (
	"context"
	"time"
)

// Clock is the time source of the retry loop, replaceable so tests can run
// a 30-second schedule instantly.
type Clock interface {
	Now() time.Time
	// Sleep pauses for d, or returns ctx's error as soon as ctx ends.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
