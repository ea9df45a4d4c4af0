package mounttoken

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/testenv/lockedbuf"
)

const prefix = "disk1/"

// textLogger logs as text to w, for assertions on what was logged.
func textLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// plant sets a flag as another host would have.
func plant(t *testing.T, b backend.Backend, token string, body string) {
	t.Helper()
	meta := backend.Meta{ContentType: "text/plain"}
	if token != "" {
		meta.User = map[string]string{"s3backer-mount-token": token}
	}
	if _, err := b.Put(context.Background(), prefix+"s3backer-mounted", []byte(body), meta); err != nil {
		t.Fatal(err)
	}
}

func token(t *testing.T, b backend.Backend) uint32 {
	t.Helper()
	tok, _, err := Read(context.Background(), b, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func alreadyMounted(t *testing.T, err error) *AlreadyMountedError {
	t.Helper()
	var e *AlreadyMountedError
	if !errors.As(err, &e) || !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("error %v, want *AlreadyMountedError matching EBUSY", err)
	}
	return e
}

func TestAcquireAndRelease(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	l, err := Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Token() == 0 || l.Token() == Shared || token(t, b) != l.Token() {
		t.Fatalf("lease token %#x, flag %#x", l.Token(), token(t, b))
	}
	// One look, one write, one look back.
	if c := b.Counts(); c.Gets != 2 || c.Puts != 1 || c.Deletes != 0 {
		t.Fatalf("Acquire cost %+v", c)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := Read(ctx, b, prefix); ok {
		t.Fatal("flag left after Release")
	}
	before := b.Counts()
	if err := l.Release(ctx); err != nil || b.Counts() != before {
		t.Fatalf("second Release: %v, requests %+v -> %+v", err, before, b.Counts())
	}
	// The disk can be mounted again.
	l, err = Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket"})
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Release(ctx)
}

func TestAcquireRefusesMountedDisk(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	plant(t, b, "2d3806ab", "otherhost\n20261124T172910Z\n")
	puts := b.Counts().Puts
	_, err := Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket"})
	e := alreadyMounted(t, err)
	want := "mybucket/disk1 appears to be already mounted (mount token 0x2d3806ab, set by otherhost at 2026-11-24 17:29:10 UTC); " +
		"if it is not, run with --reset-mounted-flag"
	if err.Error() != want {
		t.Errorf("message\n%q, want\n%q", err, want)
	}
	if e.Token != 0x2d3806ab || e.Host != "otherhost" || e.Race || e.Shared {
		t.Errorf("error fields %+v", e)
	}
	// A refused mount writes nothing (s3backer would have clobbered it).
	if b.Counts().Puts != puts || token(t, b) != 0x2d3806ab {
		t.Fatal("refused mount touched the flag")
	}
	// Read-only mounts are refused too, and still write nothing.
	_, err = Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket", ReadOnly: true})
	alreadyMounted(t, err)
	if b.Counts().Puts != puts {
		t.Fatal("read-only mount wrote")
	}
}

// A flag from before s3backer 1.5: no token header, any body.
func TestAcquirePre15Flag(t *testing.T) {
	b := mem.New()
	plant(t, b, "", "")
	_, err := Acquire(context.Background(), b, prefix, AcquireOptions{Bucket: "mybucket"})
	alreadyMounted(t, err)
	if want := "mybucket/disk1 appears to be already mounted (mount token 0x00000001); " +
		"if it is not, run with --reset-mounted-flag"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestAcquireForce(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	plant(t, b, "2d3806ab", "otherhost\n20261124T172910Z\n")
	var log lockedbuf.Buffer
	l, err := Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket", Force: true, Logger: textLogger(&log)})
	if err != nil {
		t.Fatal(err)
	}
	if tok := token(t, b); tok != l.Token() || tok == 0x2d3806ab {
		t.Fatalf("flag %#x after a forced mount with token %#x", tok, l.Token())
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "0x2d3806ab") ||
		!strings.Contains(log.String(), "--force") {
		t.Fatalf("no warning naming the old token: %q", log.String())
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAcquireReadOnlyWritesNothing(t *testing.T) {
	ctx := context.Background()
	for _, planted := range []bool{false, true} {
		b := mem.New()
		if planted {
			plant(t, b, "0000abcd", "h\n20260101T000000Z\n")
		}
		before := b.Counts()
		l, err := Acquire(ctx, b, prefix, AcquireOptions{ReadOnly: true, Force: planted})
		if err != nil {
			t.Fatal(err)
		}
		if l.Token() != 0 {
			t.Fatalf("read-only lease token %#x", l.Token())
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		after := b.Counts()
		if after.Puts != before.Puts || after.Deletes != before.Deletes {
			t.Fatalf("read-only mount (flag planted %v) wrote: %+v -> %+v", planted, before, after)
		}
		if planted && token(t, b) != 0xabcd {
			t.Fatal("read-only mount changed the flag")
		}
	}
}

func TestAcquireShared(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	l1, err := Acquire(ctx, b, prefix, AcquireOptions{Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	if l1.Token() != Shared || token(t, b) != Shared {
		t.Fatalf("shared lease %#x, flag %#x", l1.Token(), token(t, b))
	}
	// Another shared mount joins (and writes the shared token again).
	puts := b.Counts().Puts
	l2, err := Acquire(ctx, b, prefix, AcquireOptions{Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	if b.Counts().Puts != puts+1 {
		t.Fatal("a joining shared mount did not rewrite the shared token")
	}
	// A normal mount is refused, told about shared mode.
	_, err = Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket"})
	e := alreadyMounted(t, err)
	if !e.Shared || !strings.Contains(err.Error(), "shared disk mode") || !strings.Contains(err.Error(), "0x7fffffff") ||
		!strings.Contains(err.Error(), "--sharedDiskMode") || !strings.Contains(err.Error(), "--reset-mounted-flag") {
		t.Fatalf("normal mount of a shared disk: %v", err)
	}
	// Releasing shared leases leaves the flag for the others.
	deletes := b.Counts().Deletes
	if err := l1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Counts().Deletes != deletes || token(t, b) != Shared {
		t.Fatal("releasing a shared lease cleared the flag")
	}
	// A shared mount of a normally mounted disk is refused.
	b2 := mem.New()
	plant(t, b2, "00001234", "")
	_, err = Acquire(ctx, b2, prefix, AcquireOptions{Shared: true})
	if e := alreadyMounted(t, err); e.Shared || e.Token != 0x1234 {
		t.Fatalf("shared mount of a mounted disk: %+v", e)
	}
}

// racer lets "another mount" act right after this one writes the flag.
type racer struct {
	*mem.Backend
	once  sync.Once
	after func(b *mem.Backend)
}

func (r *racer) Put(ctx context.Context, key string, body []byte, meta backend.Meta) (string, error) {
	etag, err := r.Backend.Put(ctx, key, body, meta)
	if err == nil && strings.HasSuffix(key, "s3backer-mounted") {
		r.once.Do(func() { r.after(r.Backend) })
	}
	return etag, err
}

func TestAcquireRace(t *testing.T) {
	ctx := context.Background()
	overwrite := func(b *mem.Backend) { _ = Write(ctx, b, prefix, 0x00c0ffee) }
	vanish := func(b *mem.Backend) { _ = Clear(ctx, b, prefix) }

	r := &racer{Backend: mem.New(), after: overwrite}
	_, err := Acquire(ctx, r, prefix, AcquireOptions{Bucket: "mybucket"})
	e := alreadyMounted(t, err)
	if !e.Race || e.Token != 0x00c0ffee || !strings.Contains(err.Error(), "at the same time") {
		t.Fatalf("race lost: %v (%+v)", err, e)
	}
	if token(t, r) != 0x00c0ffee {
		t.Fatal("the loser of a race touched the winner's flag")
	}

	r = &racer{Backend: mem.New(), after: vanish}
	_, err = Acquire(ctx, r, prefix, AcquireOptions{Bucket: "mybucket"})
	if e := alreadyMounted(t, err); !e.Race || !strings.Contains(err.Error(), "vanished") {
		t.Fatalf("vanished flag: %v", err)
	}

	// With --force the mount goes on and makes the flag its own again.
	for _, after := range []func(*mem.Backend){overwrite, vanish} {
		var log lockedbuf.Buffer
		r = &racer{Backend: mem.New(), after: after}
		l, err := Acquire(ctx, r, prefix, AcquireOptions{Force: true, Logger: textLogger(&log)})
		if err != nil {
			t.Fatal(err)
		}
		if token(t, r) != l.Token() || !strings.Contains(log.String(), "level=WARN") {
			t.Fatalf("forced race: flag %#x, lease %#x, log %q", token(t, r), l.Token(), log.String())
		}
	}
}

func TestReleaseLeavesOthersFlag(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	l, err := Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket"})
	if err != nil {
		t.Fatal(err)
	}
	// Someone mounted with --force meanwhile.
	if err := Write(ctx, b, prefix, 0x00beef00); err != nil {
		t.Fatal(err)
	}
	err = l.Release(ctx)
	if err == nil || !strings.Contains(err.Error(), "0x00beef00") || !strings.Contains(err.Error(), fmt.Sprintf("0x%08x", l.Token())) ||
		!strings.Contains(err.Error(), "left in place") {
		t.Fatalf("Release over another's flag: %v", err)
	}
	if token(t, b) != 0x00beef00 {
		t.Fatal("Release removed another mount's flag")
	}

	// A flag already gone (--reset-mounted-flag) is fine.
	l, err = Acquire(ctx, b, prefix, AcquireOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := Clear(ctx, b, prefix); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release of a cleared flag: %v", err)
	}

	// A failing store: the error comes back and Release can be retried.
	l, err = Acquire(ctx, b, prefix, AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dead, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Release(dead); !errors.Is(err, context.Canceled) {
		t.Fatalf("Release with a failing store: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := Read(ctx, b, prefix); ok {
		t.Fatal("retried Release left the flag")
	}
}

func TestAcquireStoreErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Acquire(ctx, mem.New(), prefix, AcquireOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a failing store: %v", err)
	}
}

func TestWhere(t *testing.T) {
	for _, c := range [][3]string{
		{"mybucket", "disk1/", "mybucket/disk1"},
		{"mybucket", "", "mybucket"},
		{"mybucket", "raw", "mybucket/raw"},
		{"", "disk1/", "disk1"},
		{"", "", "the bucket"},
	} {
		if got := where(c[0], c[1]); got != c[2] {
			t.Errorf("where(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
