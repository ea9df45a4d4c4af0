package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

const ms = time.Millisecond

// s3backer's default schedule (§9.6): 9 attempts, 30 s of pauses.
var s3backerSchedule = []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 12800 * ms, 4600 * ms}

func newRetry(f *faulty, opt Options) (*Backend, *fakeClock) {
	c := newFakeClock()
	opt.Clock = c
	if opt.Rand == nil {
		opt.Rand = func() float64 { return 0 }
	}
	return New(f, opt), c
}

func errs(n int) []error {
	e := make([]error, n)
	for i := range e {
		e[i] = fmt.Errorf("attempt %d: %w", i+1, errTransient)
	}
	return e
}

// Every operation survives transient failures, comes back with the right
// result, and costs exactly failures+1 attempts.
func TestTransientThenSuccess(t *testing.T) {
	ctx := context.Background()
	body := bytes.Repeat([]byte("s3"), 100)
	meta := backend.Meta{ContentType: "application/octet-stream", User: map[string]string{"s3backer-blocksize": "200"}}

	for _, effectFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("effectFirst=%v", effectFirst), func(t *testing.T) {
			f := newFaulty()
			f.effectFirst = effectFirst
			r, clock := newRetry(f, Options{})

			f.fail("put", errs(2)...)
			etag, err := r.Put(ctx, "k", body, meta)
			if err != nil {
				t.Fatal(err)
			}
			if f.count("put") != 3 {
				t.Fatalf("put: %d attempts, want 3", f.count("put"))
			}

			f.fail("get", errs(3)...)
			buf := make([]byte, 1000)
			n, info, err := r.Get(ctx, "k", buf, backend.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf[:n], body) || info.ETag != etag || info.User["s3backer-blocksize"] != "200" {
				t.Fatalf("get: %d bytes, info %+v", n, info)
			}
			if f.count("get") != 4 {
				t.Fatalf("get: %d attempts, want 4", f.count("get"))
			}

			f.fail("head", errs(1)...)
			if info, err := r.Head(ctx, "k"); err != nil || info.Size != int64(len(body)) {
				t.Fatalf("head: %+v, %v", info, err)
			}

			f.fail("delete", errs(2)...)
			if err := r.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}

			for _, k := range []string{"a", "b", "c"} {
				if _, err := f.Backend.Put(ctx, k, body, meta); err != nil {
					t.Fatal(err)
				}
			}
			f.fail("delete-many", errs(1)...)
			if err := r.DeleteMany(ctx, []string{"a", "b", "c", "never-there"}); err != nil {
				t.Fatal(err)
			}
			if keys := f.Keys(); len(keys) != 0 {
				t.Fatalf("left behind: %v", keys)
			}

			want := map[string]int{"put": 3, "get": 4, "head": 2, "delete": 3, "delete-many": 2}
			for op, n := range want {
				if f.count(op) != n {
					t.Errorf("%s: %d attempts, want %d", op, f.count(op), n)
				}
			}
			st := r.Stats()
			wantStats := Stats{Attempts: 14, Retries: 9, RetryDelay: (200 + 400 + 200 + 400 + 800 + 200 + 200 + 400 + 200) * ms}
			if st != wantStats {
				t.Errorf("stats %+v, want %+v", st, wantStats)
			}
			if got := sum(clock.slept()); got != wantStats.RetryDelay {
				t.Errorf("slept %v, want %v", got, wantStats.RetryDelay)
			}
		})
	}
}

// Definite answers and the caller's own cancellation are returned after
// one attempt, without a pause.
func TestPermanentNotRetried(t *testing.T) {
	ctx := context.Background()
	forbidden := &backend.Permanent{Err: errors.New("403 Forbidden")}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"not found", fmt.Errorf("get k: %w", backend.ErrNotFound)},
		{"not modified", fmt.Errorf("get k: %w", backend.ErrNotModified)},
		{"precondition", fmt.Errorf("get k: %w", backend.ErrPrecondition)},
		{"too large", fmt.Errorf("get k: %w", backend.ErrTooLarge)},
		{"permanent", fmt.Errorf("get k: %w", forbidden)},
		{"canceled", fmt.Errorf("get k: %w", context.Canceled)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaulty()
			r, clock := newRetry(f, Options{})
			f.fail("get", tc.err)
			_, _, err := r.Get(ctx, "k", make([]byte, 10), backend.GetOptions{})
			if err != tc.err {
				t.Fatalf("got %v, want %v unchanged", err, tc.err)
			}
			if f.count("get") != 1 || len(clock.slept()) != 0 {
				t.Fatalf("%d attempts, %d pauses", f.count("get"), len(clock.slept()))
			}
			if st := r.Stats(); st != (Stats{Attempts: 1}) {
				t.Fatalf("stats %+v", st)
			}
		})
	}

	// The real thing: mem's own answers.
	f := newFaulty()
	r, _ := newRetry(f, Options{})
	if _, _, err := r.Get(ctx, "missing", nil, backend.GetOptions{}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := r.Head(ctx, "missing"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := r.Put(ctx, "big", make([]byte, 10), backend.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get(ctx, "big", make([]byte, 5), backend.GetOptions{}); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatal(err)
	}
	if n := f.count("get") + f.count("head"); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

// With a failure that never clears, the pauses follow the doubling
// schedule and add up to MaxPause, and the error says what happened.
func TestBudget(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		opt      Options
		sleeps   []time.Duration
		attempts int
		elapsed  string
	}{
		{"s3backer defaults", Options{}, s3backerSchedule, 9, "30s"},
		{"1s of 5s", Options{InitialPause: time.Second, MaxPause: 5 * time.Second}, []time.Duration{time.Second, 2 * time.Second, 2 * time.Second}, 4, "5s"},
		{"initial above max", Options{InitialPause: time.Second, MaxPause: 300 * ms}, []time.Duration{300 * ms}, 2, "300ms"},
		{"no retries", Options{MaxPause: -1}, nil, 1, "0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaulty()
			r, clock := newRetry(f, tc.opt)
			f.fail("put", errs(100)...)
			_, err := r.Put(ctx, "disk/00000001", []byte("x"), backend.Meta{})
			var g *GiveUpError
			if !errors.As(err, &g) || !errors.Is(err, errTransient) {
				t.Fatalf("got %v", err)
			}
			want := fmt.Sprintf("put disk/00000001: giving up after %d attempts in %s: attempt %d: transient failure",
				tc.attempts, tc.elapsed, tc.attempts)
			if err.Error() != want {
				t.Errorf("error %q\nwant  %q", err, want)
			}
			if got := clock.slept(); !slices.Equal(got, tc.sleeps) {
				t.Errorf("pauses %v, want %v", got, tc.sleeps)
			}
			if f.count("put") != tc.attempts || g.Attempts != tc.attempts {
				t.Errorf("%d attempts (error says %d), want %d", f.count("put"), g.Attempts, tc.attempts)
			}
			st := r.Stats()
			if st.GiveUps != 1 || st.Attempts != int64(tc.attempts) || st.Retries != int64(tc.attempts-1) || st.RetryDelay != sum(tc.sleeps) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// With jitter, each pause lies in (nominal/2, nominal], they still add up
// to exactly MaxPause, and the attempts stay within one of s3backer's 9.
func TestJitterBounds(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, seed))
		draw := rng.Float64
		switch seed {
		case 0:
			draw = func() float64 { return 0.999999 } // the shortest pauses
		case 1:
			draw = func() float64 { return 0 } // the longest
		}
		f := newFaulty()
		r, clock := newRetry(f, Options{Rand: draw})
		f.fail("put", errs(100)...)
		if _, err := r.Put(ctx, "k", nil, backend.Meta{}); err == nil {
			t.Fatal("no error")
		}
		sleeps := clock.slept()
		if total := sum(sleeps); total != DefaultMaxPause {
			t.Fatalf("seed %d: paused %v in all: %v", seed, total, sleeps)
		}
		nominal := DefaultInitialPause
		for i, d := range sleeps {
			last := i == len(sleeps)-1
			if d > nominal || (!last && d <= nominal/2) {
				t.Fatalf("seed %d: pause %d is %v, nominal %v: %v", seed, i, d, nominal, sleeps)
			}
			nominal *= 2
		}
		if n := f.count("put"); n < 9 || n > 10 {
			t.Fatalf("seed %d: %d attempts", seed, n)
		}
	}
}

// Cancelling the caller's context ends a pause at once, with real time.
func TestCancelDuringPause(t *testing.T) {
	f := newFaulty()
	f.called = make(chan string)
	r := New(f, Options{InitialPause: time.Hour, MaxPause: 10 * time.Hour})
	f.fail("put", errs(100)...)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Put(ctx, "k", []byte("x"), backend.Meta{})
		done <- err
	}()
	<-f.called // the first attempt failed; the hour-long pause follows
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errTransient) {
			t.Fatalf("got %v", err)
		}
		if !strings.Contains(err.Error(), "put k: stopped after 1 attempts") {
			t.Errorf("error %q", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Put did not return after cancel")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned %v after cancel", d)
	}
	if st := r.Stats(); st.Attempts != 1 || st.Retries != 0 || st.GiveUps != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A caller's deadline that passes during an attempt stops the retries even
// if the backend's error does not say why.
func TestCallerDeadline(t *testing.T) {
	f := newFaulty()
	r, clock := newRetry(f, Options{})
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	f.fail("delete", errors.New("read tcp: i/o timeout"))
	err := r.Delete(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if f.count("delete") != 1 || len(clock.slept()) != 0 {
		t.Fatalf("%d attempts, %d pauses", f.count("delete"), len(clock.slept()))
	}
}

// Each retry is logged at debug and each give-up at warn, with the key
// and the error.
func TestLogging(t *testing.T) {
	h := &recorder{}
	f := newFaulty()
	r, _ := newRetry(f, Options{Logger: slog.New(h), MaxPause: 600 * ms})
	f.fail("put", errs(100)...)
	if _, err := r.Put(context.Background(), "blk", nil, backend.Meta{}); err == nil {
		t.Fatal("no error")
	}
	var got []string
	for _, rec := range h.records {
		attrs := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		got = append(got, fmt.Sprintf("%s %s key=%s err=%s", rec.Level, rec.Message, attrs["key"], attrs["err"]))
	}
	want := []string{
		"DEBUG retrying key=blk err=attempt 1: transient failure",
		"DEBUG retrying key=blk err=attempt 2: transient failure",
		"WARN giving up key=blk err=attempt 3: transient failure",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Concurrent operations share the counters safely (run with -race).
func TestConcurrent(t *testing.T) {
	f := newFaulty()
	r, _ := newRetry(f, Options{})
	f.perKey = 2
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			for j := range 10 {
				key := fmt.Sprintf("k%02d-%d", i, j)
				if _, err := r.Put(context.Background(), key, []byte(key), backend.Meta{}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if st := r.Stats(); st.Attempts != 600 || st.Retries != 400 || len(f.Keys()) != 200 {
		t.Fatalf("stats %+v, %d keys", st, len(f.Keys()))
	}
}

func sum(ds []time.Duration) (t time.Duration) {
	for _, d := range ds {
		t += d
	}
	return t
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }
