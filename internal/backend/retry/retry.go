// Package retry is a backend.Backend decorator that retries failed requests
// the way s3backer does (§9.6 of the format notes): every error except a
// definite answer is retried, with pauses starting at --initialRetryPause and
// doubling, until the pauses add up to --maxRetryPause.
//
// Every operation is retried whole. That is safe because each one is
// idempotent: a PUT that reached the server before the connection broke
// stores the same bytes again, a DELETE of a missing key succeeds, and a
// listing resumes after the last key it delivered.
package retry

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// s3backer's defaults for --initialRetryPause and --maxRetryPause.
const (
	DefaultInitialPause = 200 * time.Millisecond
	DefaultMaxPause     = 30 * time.Second
)

// Options tune the retries. The zero value is s3backer's behaviour.
type Options struct {
	// InitialPause is the first pause (zero or negative: 200ms).
	InitialPause time.Duration
	// MaxPause is the total time spent pausing for one operation before
	// giving up (zero: 30s; negative: never retry).
	MaxPause time.Duration
	// Logger gets a debug record per retry and a warning per give-up
	// (nil: no logging).
	Logger *slog.Logger
	// Clock measures and sleeps (nil: real time). Tests use a fake one.
	Clock Clock
	// Rand returns the jitter draw in [0, 1) (nil: math/rand/v2). A
	// constant 0 gives s3backer's exact schedule.
	Rand func() float64
}

// Backend retries the requests of the Backend it wraps.
type Backend struct {
	next    backend.Backend
	initial time.Duration
	budget  time.Duration
	log     *slog.Logger
	clock   Clock
	rand    func() float64

	attempts, retries, giveUps atomic.Int64
	delay                      atomic.Int64 // nanoseconds
}

var _ backend.Backend = (*Backend)(nil)

// New wraps next.
func New(next backend.Backend, opt Options) *Backend {
	b := &Backend{
		next:    next,
		initial: opt.InitialPause,
		budget:  opt.MaxPause,
		log:     opt.Logger,
		clock:   opt.Clock,
		rand:    opt.Rand,
	}
	if b.initial <= 0 {
		b.initial = DefaultInitialPause
	}
	if b.budget == 0 {
		b.budget = DefaultMaxPause
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.clock == nil {
		b.clock = realClock{}
	}
	if b.rand == nil {
		b.rand = rand.Float64
	}
	return b
}

func (b *Backend) Get(ctx context.Context, key string, buf []byte, opt backend.GetOptions) (int, backend.Info, error) {
	var (
		n    int
		info backend.Info
	)
	err := b.do(ctx, "get", key, nil, func() (err error) {
		n, info, err = b.next.Get(ctx, key, buf, opt)
		return err
	})
	return n, info, err
}

func (b *Backend) Head(ctx context.Context, key string) (backend.Info, error) {
	var info backend.Info
	err := b.do(ctx, "head", key, nil, func() (err error) {
		info, err = b.next.Head(ctx, key)
		return err
	})
	return info, err
}

func (b *Backend) Put(ctx context.Context, key string, body []byte, meta backend.Meta) (string, error) {
	var etag string
	err := b.do(ctx, "put", key, nil, func() (err error) {
		etag, err = b.next.Put(ctx, key, body, meta)
		return err
	})
	return etag, err
}

func (b *Backend) Delete(ctx context.Context, key string) error {
	return b.do(ctx, "delete", key, nil, func() error {
		return b.next.Delete(ctx, key)
	})
}

// DeleteMany resends the whole batch: keys already deleted are not errors.
func (b *Backend) DeleteMany(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return b.next.DeleteMany(ctx, keys)
	}
	what := fmt.Sprintf("%s (+%d more)", keys[0], len(keys)-1)
	return b.do(ctx, "delete-many", what, nil, func() error {
		return b.next.DeleteMany(ctx, keys)
	})
}
