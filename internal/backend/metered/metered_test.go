package metered_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/backendtest"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/backend/metered"
	"github.com/s3backer-go/s3backer/internal/backend/retry"
	"github.com/s3backer-go/s3backer/internal/stats"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(*testing.T) backend.Backend {
		return metered.New(mem.New(), new(stats.S3), metered.Options{})
	})
}

func snap(r *stats.Registry) stats.S3Snapshot { return r.Snapshot().S3 }

func TestCounts(t *testing.T) {
	ctx := context.Background()
	reg := stats.New()
	b := metered.New(mem.New(), &reg.S3, metered.Options{})
	body := []byte("0123456789")
	for i := range 3 {
		if _, err := b.Put(ctx, fmt.Sprintf("k%d", i), body, backend.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	for _, k := range []string{"k0", "k1", "missing"} {
		_, _, err := b.Get(ctx, k, buf, backend.GetOptions{})
		if k == "missing" != errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("get %s: %v", k, err)
		}
	}
	info, err := b.Head(ctx, "k0")
	if err != nil {
		t.Fatal(err)
	}
	// Conditional reads: the same ETag is verified, another is a mismatch.
	if _, _, err := b.Get(ctx, "k0", buf, backend.GetOptions{IfNoneMatch: info.ETag}); !errors.Is(err, backend.ErrNotModified) {
		t.Fatalf("conditional get: %v", err)
	}
	if _, _, err := b.Get(ctx, "k0", buf, backend.GetOptions{IfNoneMatch: "other"}); err != nil {
		t.Fatalf("conditional get: %v", err)
	}
	if err := b.Delete(ctx, "k0"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteMany(ctx, []string{"k1", "k2", "nothing"}); err != nil {
		t.Fatal(err)
	}
	var listed int
	if err := b.List(ctx, "", "", func(string) error { listed++; return nil }); err != nil {
		t.Fatal(err)
	}

	s := snap(reg)
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"put ok", s.Count(stats.OK, stats.OpPut), 3},
		{"get ok", s.Count(stats.OK, stats.OpGet), 3},
		{"get not found", s.Count(stats.NotFound, stats.OpGet), 1},
		{"get not modified", s.Count(stats.NotModified, stats.OpGet), 1},
		{"head ok", s.Count(stats.OK, stats.OpHead), 1},
		{"delete ok", s.Count(stats.OK, stats.OpDelete), 1},
		{"delete many ok", s.Count(stats.OK, stats.OpDeleteMany), 1},
		{"list ok", s.Count(stats.OK, stats.OpList), 1},
		{"sent", s.Sent, 30},
		{"received", s.Received, 30},
		{"deleted keys", s.DeletedKeys, 4},
		{"mismatches", s.Mismatches, 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	for op, n := range s.InFlight {
		if n != 0 {
			t.Errorf("op %d: %d in flight after the calls returned", op, n)
		}
	}
	if listed != 0 {
		t.Errorf("listed %d keys of an empty store", listed)
	}
	var inBuckets uint64
	for _, n := range s.Cell(stats.OpPut, stats.OK).Buckets {
		inBuckets += n
	}
	if inBuckets != 3 {
		t.Errorf("put latency buckets hold %d requests, want 3", inBuckets)
	}
}

// failing answers every request with err.
type failing struct {
	*mem.Backend
	err   error
	calls int
}

func (f *failing) Put(ctx context.Context, key string, body []byte, meta backend.Meta) (string, error) {
	f.calls++
	if f.calls <= 2 {
		return "", f.err
	}
	return f.Backend.Put(ctx, key, body, meta)
}

// A request that fails twice and then succeeds, under retry, is three
// requests: two failures and one success, and two retries.
func TestUnderRetry(t *testing.T) {
	reg := stats.New()
	f := &failing{Backend: mem.New(), err: statusErr(503)}
	m := metered.New(f, &reg.S3, metered.Options{HTTPStatus: statusOf})
	r := retry.New(m, retry.Options{InitialPause: time.Millisecond, Rand: func() float64 { return 0 }})
	reg.Watch(stats.Sources{Retry: r.Stats})
	if _, err := r.Put(context.Background(), "k", []byte("x"), backend.Meta{}); err != nil {
		t.Fatal(err)
	}
	s := reg.Snapshot()
	if got := s.S3.Count(stats.HTTP5xx, stats.OpPut); got != 2 {
		t.Errorf("5xx puts = %d, want 2", got)
	}
	if got := s.S3.Count(stats.OK, stats.OpPut); got != 1 {
		t.Errorf("ok puts = %d, want 1", got)
	}
	if s.Retry.Retries != 2 {
		t.Errorf("retries = %d, want 2", s.Retry.Retries)
	}
}

type httpErr int

func (e httpErr) Error() string { return fmt.Sprintf("HTTP %d", int(e)) }

func statusErr(code int) error { return fmt.Errorf("put k: %w", httpErr(code)) }

func statusOf(err error) int {
	var h httpErr
	if errors.As(err, &h) {
		return int(h)
	}
	return 0
}

func TestClassify(t *testing.T) {
	m := metered.New(mem.New(), new(stats.S3), metered.Options{
		HTTPStatus: statusOf,
		IsTimeout:  func(err error) bool { return err.Error() == "slow" },
	})
	for _, c := range []struct {
		err  error
		want stats.Outcome
	}{
		{nil, stats.OK},
		{fmt.Errorf("get: %w", backend.ErrNotFound), stats.NotFound},
		{backend.ErrNotModified, stats.NotModified},
		{backend.ErrPrecondition, stats.Stale},
		{&backend.Permanent{Err: statusErr(401)}, stats.Unauthorized},
		{&backend.Permanent{Err: statusErr(403)}, stats.Forbidden},
		{statusErr(307), stats.Redirect},
		{statusErr(300), stats.HTTP3xx},
		{statusErr(400), stats.HTTP4xx},
		{statusErr(429), stats.HTTP4xx},
		{statusErr(500), stats.HTTP5xx},
		{statusErr(200), stats.HTTPOther},
		{errors.New("slow"), stats.Timeout},
		{context.DeadlineExceeded, stats.Timeout},
		{fmt.Errorf("x: %w", context.Canceled), stats.Canceled},
		{&net.DNSError{Err: "no such host", Name: "h"}, stats.HostUnknown},
		{fmt.Errorf("cannot reach: %w", syscall.ECONNREFUSED), stats.ConnectFailed},
		{errors.New("boom"), stats.OtherError},
	} {
		if got := m.Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// Only keys that name blocks count as deleted blocks (zero blocks
// written): the mount flag's removal is a DELETE, not a zero block.
func TestDeletedBlocksOnly(t *testing.T) {
	ctx := context.Background()
	reg := stats.New()
	isBlock := func(key string) bool { return key != "s3backer-mounted" }
	b := metered.New(mem.New(), &reg.S3, metered.Options{IsBlock: isBlock})
	for _, k := range []string{"00000001", "00000002", "s3backer-mounted"} {
		if _, err := b.Put(ctx, k, []byte("x"), backend.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, "s3backer-mounted"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteMany(ctx, []string{"00000001", "00000002", "s3backer-mounted"}); err != nil {
		t.Fatal(err)
	}
	s := snap(reg)
	if s.DeletedKeys != 2 || s.Count(stats.OK, stats.OpDelete) != 1 {
		t.Fatalf("%d deleted blocks, %d deletes; want 2 and 1", s.DeletedKeys, s.Count(stats.OK, stats.OpDelete))
	}
}
