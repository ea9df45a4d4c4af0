// Package metered is a backend.Backend decorator that counts every request
// into a stats.S3: operation, outcome, latency and bytes moved.
//
// It sits right above the store itself, under the retry decorator, so
// each attempt is one request counted, as s3backer counts each HTTP
// request (a GET that succeeds on its third try is two failures and one
// http_gets).
package metered

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/stats"
)

// Options say how to read the wrapped store's errors.
type Options struct {
	// HTTPStatus returns the HTTP status an error carries (0: none). The
	// backend's sentinel errors (ErrNotFound, ...) need no help.
	HTTPStatus func(error) int
	// IsTimeout reports whether an error is the store's own request
	// timeout (net.Error timeouts are recognised anyway).
	IsTimeout func(error) bool
	// IsBlock reports whether a key names a block: only deleted blocks
	// count as zero blocks written (s3backer's http_zero_blocks_written),
	// not the mount flag or other objects. Nil: every key is a block.
	IsBlock func(key string) bool
}

// Backend counts the requests of the Backend it wraps.
type Backend struct {
	next backend.Backend
	s    *stats.S3
	opt  Options
	now  func() time.Time
}

var _ backend.Backend = (*Backend)(nil)

// New wraps next, counting into s.
func New(next backend.Backend, s *stats.S3, opt Options) *Backend {
	return &Backend{next: next, s: s, opt: opt, now: time.Now}
}

// start counts op in flight and returns the func that records its end.
func (b *Backend) start(op stats.Op) func(error) {
	b.s.Start(op)
	t0 := b.now()
	return func(err error) { b.s.Done(op, b.Classify(err), b.now().Sub(t0)) }
}

func (b *Backend) Get(ctx context.Context, key string, buf []byte, opt backend.GetOptions) (int, backend.Info, error) {
	done := b.start(stats.OpGet)
	n, info, err := b.next.Get(ctx, key, buf, opt)
	done(err)
	if err == nil {
		b.s.Received(n)
		if opt.IfNoneMatch != "" {
			b.s.Mismatch()
		}
	}
	return n, info, err
}

func (b *Backend) Head(ctx context.Context, key string) (backend.Info, error) {
	done := b.start(stats.OpHead)
	info, err := b.next.Head(ctx, key)
	done(err)
	return info, err
}

func (b *Backend) Put(ctx context.Context, key string, body []byte, meta backend.Meta) (string, error) {
	done := b.start(stats.OpPut)
	etag, err := b.next.Put(ctx, key, body, meta)
	done(err)
	if err == nil {
		b.s.Sent(len(body))
	}
	return etag, err
}

func (b *Backend) Delete(ctx context.Context, key string) error {
	done := b.start(stats.OpDelete)
	err := b.next.Delete(ctx, key)
	done(err)
	if err == nil && b.isBlock(key) {
		b.s.Deleted(1)
	}
	return err
}

// DeleteMany counts one request per call; S3 sends one per 1000 keys,
// which is every call the layers above make (they batch by 1000).
func (b *Backend) DeleteMany(ctx context.Context, keys []string) error {
	done := b.start(stats.OpDeleteMany)
	err := b.next.DeleteMany(ctx, keys)
	done(err)
	if err == nil {
		n := 0
		for _, k := range keys {
			if b.isBlock(k) {
				n++
			}
		}
		b.s.Deleted(n)
	}
	return err
}

func (b *Backend) isBlock(key string) bool { return b.opt.IsBlock == nil || b.opt.IsBlock(key) }

// List counts one request per call, however many pages it reads.
func (b *Backend) List(ctx context.Context, prefix, startAfter string, fn func(key string) error) error {
	done := b.start(stats.OpList)
	err := b.next.List(ctx, prefix, startAfter, fn)
	if errors.Is(err, backend.ErrStop) {
		done(nil)
	} else {
		done(err)
	}
	return err
}

// Classify maps an error of the wrapped store to an outcome.
func (b *Backend) Classify(err error) stats.Outcome {
	switch {
	case err == nil:
		return stats.OK
	case errors.Is(err, backend.ErrNotFound):
		return stats.NotFound
	case errors.Is(err, backend.ErrNotModified):
		return stats.NotModified
	case errors.Is(err, backend.ErrPrecondition):
		return stats.Stale
	case errors.Is(err, context.Canceled):
		return stats.Canceled
	}
	if b.opt.HTTPStatus != nil {
		if st := b.opt.HTTPStatus(err); st != 0 {
			return byStatus(st)
		}
	}
	if b.opt.IsTimeout != nil && b.opt.IsTimeout(err) {
		return stats.Timeout
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() {
		return stats.Timeout
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return stats.HostUnknown
	}
	for _, e := range []syscall.Errno{syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, e) {
			return stats.ConnectFailed
		}
	}
	return stats.OtherError
}

func byStatus(st int) stats.Outcome {
	switch st {
	case 401:
		return stats.Unauthorized
	case 403:
		return stats.Forbidden
	case 404:
		return stats.NotFound
	case 304:
		return stats.NotModified
	case 412:
		return stats.Stale
	case 301, 302, 307, 308:
		return stats.Redirect
	}
	switch st / 100 {
	case 3:
		return stats.HTTP3xx
	case 4:
		return stats.HTTP4xx
	case 5:
		return stats.HTTP5xx
	}
	return stats.HTTPOther
}
