package nbd

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkerPool: every request is served once, never more than limit at
// once, by at most limit goroutines, and wait returns once all are done.
func TestWorkerPool(t *testing.T) {
	const limit, total = 4, 200
	var (
		mu            sync.Mutex
		served        = map[uint64]int{}
		running, peak atomic.Int32
	)
	p := newWorkerPool(limit, func(r *request) {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		if r.cookie%7 == 0 {
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		served[r.cookie]++
		mu.Unlock()
		running.Add(-1)
	})
	for i := range total {
		p.submit(request{cookie: uint64(i)})
	}
	p.wait()
	if len(served) != total {
		t.Fatalf("%d requests served, want %d", len(served), total)
	}
	for c, n := range served {
		if n != 1 {
			t.Errorf("request %d served %d times", c, n)
		}
	}
	if peak.Load() > limit || p.n > limit {
		t.Errorf("%d requests served at once by %d goroutines, limit %d", peak.Load(), p.n, limit)
	}
}
