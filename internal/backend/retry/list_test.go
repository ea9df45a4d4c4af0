package retry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

func listFixture(t *testing.T) (*faulty, []string) {
	t.Helper()
	f := newFaulty()
	var keys []string
	for i := range 10 {
		k := fmt.Sprintf("d/%08x", i)
		keys = append(keys, k)
		if _, err := f.Backend.Put(context.Background(), k, nil, backend.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	// Outside the prefix: must never show up.
	if _, err := f.Backend.Put(context.Background(), "e/00000000", nil, backend.Meta{}); err != nil {
		t.Fatal(err)
	}
	return f, keys
}

func collect(r *Backend, prefix, startAfter string) ([]string, error) {
	var got []string
	err := r.List(context.Background(), prefix, startAfter, func(k string) error {
		got = append(got, k)
		return nil
	})
	return got, err
}

// A listing that breaks part-way resumes after the last key delivered:
// every key once, in order.
func TestListResume(t *testing.T) {
	f, keys := listFixture(t)
	f.listCuts = []int{3, 0, 2}
	r, clock := newRetry(f, Options{})
	got, err := collect(r, "d/", keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, keys[1:]) {
		t.Fatalf("listed %v\nwant   %v", got, keys[1:])
	}
	wantFrom := []string{keys[0], keys[3], keys[3], keys[5]}
	if !slices.Equal(f.listFrom, wantFrom) {
		t.Fatalf("resumed after %q, want %q", f.listFrom, wantFrom)
	}
	// Progress resets the schedule; the empty second attempt made none, so
	// the pause after it doubled.
	if got, want := clock.slept(), []time.Duration{200 * ms, 400 * ms, 200 * ms}; !slices.Equal(got, want) {
		t.Fatalf("pauses %v, want %v", got, want)
	}
}

// A long listing that keeps breaking but keeps moving is not abandoned:
// each stretch of progress gets a fresh budget.
func TestListProgressResetsBudget(t *testing.T) {
	f, keys := listFixture(t)
	f.listCuts = []int{1, 1, 1, 1, 1, 1, 1, 1, 1}
	r, _ := newRetry(f, Options{MaxPause: 200 * ms}) // one retry per stretch
	got, err := collect(r, "d/", "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("listed %v", got)
	}
	if f.count("list") != 10 {
		t.Fatalf("%d list calls, want 10", f.count("list"))
	}

	// Without progress the budget runs out as usual.
	f.listCuts = []int{0, 0, 0}
	f.listFrom = nil
	_, err = collect(r, "d/", "")
	var g *GiveUpError
	if !errors.As(err, &g) || g.Attempts != 2 || !errors.Is(err, errTransient) {
		t.Fatalf("got %v", err)
	}
}

// The callback's own error ends the listing at once; ErrStop ends it
// without error.
func TestListCallbackErrors(t *testing.T) {
	f, keys := listFixture(t)
	r, clock := newRetry(f, Options{})
	mine := errors.New("callback failed")
	var got []string
	err := r.List(context.Background(), "d/", "", func(k string) error {
		got = append(got, k)
		if len(got) == 2 {
			return mine
		}
		return nil
	})
	if !errors.Is(err, mine) || f.count("list") != 1 || len(clock.slept()) != 0 {
		t.Fatalf("got %v after %d calls", err, f.count("list"))
	}

	got = nil
	f.listCuts = []int{2}
	err = r.List(context.Background(), "d/", "", func(k string) error {
		got = append(got, k)
		if len(got) == 4 {
			return backend.ErrStop
		}
		return nil
	})
	if err != nil || !slices.Equal(got, keys[:4]) {
		t.Fatalf("got %v, %v", got, err)
	}
}
