package mounttoken

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// AcquireOptions are the start-up flags that bear on the mount flag.
type AcquireOptions struct {
	Bucket   string // for messages ("BUCKET/PREFIX appears to be ...")
	Force    bool   // --force: warn and take over a flag that is set
	ReadOnly bool   // --readOnly: check, but write nothing
	Shared   bool   // --sharedDiskMode: write Shared; other Shared mounts are fine
	// Accept is the token a cache file (--blockCacheFile) recorded: a flag
	// holding it was left by this cache file's mount when it crashed, and
	// is taken over without Force (s3backer does the same). 0: none.
	Accept uint32
	// Token is the token to write (0: a new random one). A cache file
	// chooses it so that it can record it before the flag is set; after a
	// crash it is the accepted one, so the flag never changes.
	Token uint32
	// Grace is how long a flag set by this host may take to disappear
	// before the mount is refused (default StopGrace): a mount that was
	// just unmounted may still be clearing it (FUSE's umount returns
	// before the process has stopped), and a remount right after must
	// not meet it. Negative: no grace.
	Grace  time.Duration
	Logger *slog.Logger
}

// StopGrace is the default AcquireOptions.Grace.
const StopGrace = 2 * time.Second

// graceStep is how often the flag is looked at again during the grace.
const graceStep = 100 * time.Millisecond

// Lease is a mount's hold on the flag, from Acquire to Release.
type Lease struct {
	b      backend.Backend
	prefix string
	where  string
	token  uint32 // 0: read-only, nothing written
	log    *slog.Logger

	mu       sync.Mutex
	released bool
}

// Token is the token this mount wrote (Shared in shared mode), or 0 for a
// read-only mount. A cache file records it.
func (l *Lease) Token() uint32 { return l.token }

// Acquire applies s3backer's start-up policy (§6): refuse if a flag is set
// (unless Force, or both this mount and the flag are shared), then set a
// new token and read it back, so that of two mounts starting together the
// one whose token was overwritten gives up. A read-only mount only checks.
//
// Unlike s3backer, a refused mount writes nothing (s3backer writes its
// token first, clobbering the first mount's). Two mounts that each read
// their own token back before the other writes both succeed: the store
// offers no atomic create, so the check narrows the race, not closes it.
func Acquire(ctx context.Context, b backend.Backend, prefix string, opt AcquireOptions) (*Lease, error) {
	l := &Lease{b: b, prefix: prefix, where: where(opt.Bucket, prefix), log: opt.Logger}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	f, present, err := stat(ctx, b, prefix)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.where, err)
	}
	if present && !opt.Shared && f.Token != opt.Accept && sameHost(f) {
		if f, present, err = awaitClear(ctx, b, prefix, opt.Grace); err != nil {
			return nil, fmt.Errorf("%s: %w", l.where, err)
		}
	}
	accepted := present && !opt.Shared && opt.Accept != 0 && f.Token == opt.Accept
	if accepted {
		l.log.Info("the mount flag holds the token of this cache file: its mount stopped without clearing it; taking over",
			"where", l.where, "token", fmt.Sprintf("0x%08x", f.Token))
	}
	if present && !(opt.Shared && f.Token == Shared) && !accepted {
		e := &AlreadyMountedError{Where: l.where, Flag: f, Shared: f.Token == Shared}
		if !opt.Force {
			return nil, e
		}
		l.log.Warn(e.Error() + "; taking it over (--force)")
	}
	if opt.ReadOnly {
		return l, nil
	}

	l.token = NewToken()
	if opt.Token != 0 && opt.Token != Shared {
		l.token = opt.Token
	}
	if opt.Shared {
		l.token = Shared
	}
	// From writing the flag to checking it, a cancel waits: a caller that
	// gave up half-way would not know to clear a flag it did set.
	ctx = context.WithoutCancel(ctx)
	if err := Write(ctx, b, prefix, l.token); err != nil {
		return nil, fmt.Errorf("%s: %w", l.where, err)
	}
	f, present, err = stat(ctx, b, prefix)
	if err != nil {
		return nil, fmt.Errorf("%s: check after setting the mount flag (it may be left set): %w", l.where, err)
	}
	if !present || f.Token != l.token {
		e := &AlreadyMountedError{Where: l.where, Flag: f, Race: true}
		if !opt.Force {
			return nil, e
		}
		l.log.Warn(e.Error() + "; setting it again (--force)")
		if err := Write(ctx, b, prefix, l.token); err != nil {
			return nil, fmt.Errorf("%s: %w", l.where, err)
		}
	}
	return l, nil
}

// Release clears the flag at a clean stop, if it is still this mount's. A
// flag someone else has set since (a forced mount) is left alone, with an
// error saying so. Read-only and shared mounts leave the flag as it is
// (s3backer does the same: other shared mounts may still run). Between the
// check and the DELETE another mount could still slip in; the store offers
// no conditional delete.
func (l *Lease) Release(ctx context.Context) error {
	if l.token == 0 || l.token == Shared {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	t, present, err := Read(ctx, l.b, l.prefix)
	if err != nil {
		return fmt.Errorf("%s: %w", l.where, err)
	}
	switch {
	case !present:
		l.log.Debug("mount flag already cleared", "where", l.where)
	case t != l.token:
		l.released = true
		return fmt.Errorf("%s: the mount flag now holds token 0x%08x, not this mount's 0x%08x: "+
			"another mount took it over; left in place", l.where, t, l.token)
	default:
		if err := Clear(ctx, l.b, l.prefix); err != nil {
			return fmt.Errorf("%s: %w", l.where, err)
		}
	}
	l.released = true
	return nil
}

// where names the disk in messages as s3backer's bucket argument would
// ("mybucket/disk1" for prefix "disk1/").
func where(bucket, prefix string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	switch {
	case bucket == "" && prefix == "":
		return "the bucket"
	case bucket == "":
		return prefix
	case prefix == "":
		return bucket
	}
	return bucket + "/" + prefix
}

// sameHost: the flag was set by a mount on this machine.
func sameHost(f Flag) bool {
	host, err := os.Hostname()
	return err == nil && f.Host != "" && f.Host == host
}

// awaitClear looks at the flag every graceStep until it is gone or grace
// (0: StopGrace) has passed, and returns it as last seen.
func awaitClear(ctx context.Context, b backend.Backend, prefix string, grace time.Duration) (Flag, bool, error) {
	if grace == 0 {
		grace = StopGrace
	}
	deadline := time.Now().Add(grace)
	for {
		f, present, err := stat(ctx, b, prefix)
		if err != nil || !present || grace < 0 || !time.Now().Before(deadline) {
			return f, present, err
		}
		t := time.NewTimer(graceStep)
		select {
		case <-ctx.Done():
			t.Stop()
			return f, present, ctx.Err()
		case <-t.C:
		}
	}
}
