package retry

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
)

// errTransient stands for a 503, a reset connection or a timeout.
var errTransient = errors.New("transient failure")

// faulty is a backend.Backend over mem that fails on a script, to drive the
// retry loop through each path.
type faulty struct {
	*mem.Backend

	mu sync.Mutex
	// errs holds, per operation, the errors the next calls return in turn
	// (nil: pass through); once empty, calls pass through.
	errs map[string][]error
	// effectFirst makes a failing put/delete/delete-many take effect
	// before it fails, like a connection reset after the server answered.
	effectFirst bool
	// listCuts: the i-th List call fails with errTransient after
	// delivering listCuts[i] keys; calls past the end list normally.
	listCuts []int
	// perKey makes the first perKey puts of every key fail.
	perKey   int
	keyCalls map[string]int
	// listFrom records the startAfter of each List call.
	listFrom []string
	calls    map[string]int
	// called, if set, receives the operation name of every call.
	called chan string
}

func newFaulty() *faulty {
	return &faulty{Backend: mem.New(), errs: map[string][]error{}, calls: map[string]int{}, keyCalls: map[string]int{}}
}

// fail queues errs for op.
func (f *faulty) fail(op string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[op] = append(f.errs[op], errs...)
}

func (f *faulty) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// next counts a call of op on key and pops its scripted error.
func (f *faulty) next(op, key string) error {
	f.mu.Lock()
	f.calls[op]++
	f.keyCalls[op+" "+key]++
	var err error
	if q := f.errs[op]; len(q) > 0 {
		err, f.errs[op] = q[0], q[1:]
	} else if op == "put" && f.keyCalls[op+" "+key] <= f.perKey {
		err = errTransient
	}
	f.mu.Unlock()
	if f.called != nil {
		f.called <- op
	}
	return err
}

func (f *faulty) Get(ctx context.Context, key string, buf []byte, opt backend.GetOptions) (int, backend.Info, error) {
	if err := f.next("get", key); err != nil {
		return 0, backend.Info{}, err
	}
	return f.Backend.Get(ctx, key, buf, opt)
}

func (f *faulty) Head(ctx context.Context, key string) (backend.Info, error) {
	if err := f.next("head", key); err != nil {
		return backend.Info{}, err
	}
	return f.Backend.Head(ctx, key)
}

func (f *faulty) Put(ctx context.Context, key string, body []byte, meta backend.Meta) (string, error) {
	err := f.next("put", key)
	if err == nil || f.effectFirst {
		etag, perr := f.Backend.Put(ctx, key, body, meta)
		if err == nil {
			return etag, perr
		}
	}
	return "", err
}

func (f *faulty) Delete(ctx context.Context, key string) error {
	err := f.next("delete", key)
	if err == nil || f.effectFirst {
		if derr := f.Backend.Delete(ctx, key); err == nil {
			return derr
		}
	}
	return err
}

func (f *faulty) DeleteMany(ctx context.Context, keys []string) error {
	err := f.next("delete-many", "")
	if err == nil || f.effectFirst {
		if derr := f.Backend.DeleteMany(ctx, keys); err == nil {
			return derr
		}
	}
	return err
}

func (f *faulty) List(ctx context.Context, prefix, startAfter string, fn func(string) error) error {
	if err := f.next("list", prefix); err != nil {
		return err
	}
	f.mu.Lock()
	i := len(f.listFrom)
	f.listFrom = append(f.listFrom, startAfter)
	cut := -1
	if i < len(f.listCuts) {
		cut = f.listCuts[i]
	}
	f.mu.Unlock()
	if cut < 0 {
		return f.Backend.List(ctx, prefix, startAfter, fn)
	}
	delivered := 0
	return f.Backend.List(ctx, prefix, startAfter, func(k string) error {
		if delivered == cut {
			return errTransient
		}
		delivered++
		return fn(k)
	})
}

// fakeClock advances only when slept on, so a 30 s schedule runs at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1e9, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	return nil
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}
