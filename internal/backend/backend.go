// Package backend defines what an object store (S3 today; GCS or Azure
// tomorrow) must do for s3backer-go: move opaque objects by name. Backends
// know nothing of blocks; the codec layer decides what goes in an object.
//
// Decorators (retries, rate limits, fault injection in tests) wrap a Backend
// and are Backends themselves, like restic's backend layers.
package backend

import (
	"context"
	"errors"
)

// Meta is the part of an object's metadata that s3backer uses.
type Meta struct {
	ContentType     string
	ContentEncoding string
	// User metadata (x-amz-meta-NAME), keyed by NAME in lower case.
	User map[string]string
}

// Info describes a stored object.
type Info struct {
	Size int64
	// ETag as the server sent it, without quotes (the MD5 of the body in
	// hex for a plain S3 PUT; opaque otherwise).
	ETag string
	// OpaqueETag: the answer says the ETag is not the body's MD5 even if
	// it looks like one (S3 objects under SSE-KMS or SSE-C).
	OpaqueETag bool
	Meta
}

// GetOptions are the conditional forms of a read.
type GetOptions struct {
	// IfNoneMatch: answer ErrNotModified if the object's ETag is this one.
	IfNoneMatch string
	// IfMatch: answer ErrPrecondition unless the object's ETag is this one.
	IfMatch string
}

// Backend is a flat namespace of objects. Implementations are safe for
// concurrent use. Every error from a request that did not succeed is
// returned (retrying is a decorator's job), wrapped with the key.
type Backend interface {
	// Get reads the object into buf and returns how many bytes it holds.
	// ErrNotFound if there is none; ErrTooLarge if it does not fit in buf.
	Get(ctx context.Context, key string, buf []byte, opt GetOptions) (int, Info, error)
	// Head returns the object's Info, or ErrNotFound.
	Head(ctx context.Context, key string) (Info, error)
	// Put stores body under key (sending its MD5 for the server to check)
	// and returns the new ETag.
	Put(ctx context.Context, key string, body []byte, meta Meta) (etag string, err error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// DeleteMany removes keys, in as few requests as the store allows
	// (S3: 1000 keys each); missing keys are not errors. A store found to
	// have no bulk delete answers a Permanent error wrapping
	// errors.ErrUnsupported: then the caller deletes one key at a time.
	DeleteMany(ctx context.Context, keys []string) error
	// List calls fn with every key that starts with prefix and sorts after
	// startAfter, in ascending order, until fn returns an error (ErrStop
	// ends the listing without error).
	List(ctx context.Context, prefix, startAfter string, fn func(key string) error) error
}

var (
	// ErrNotFound: no such object (S3 404).
	ErrNotFound = errors.New("object not found")
	// ErrNotModified: a GetOptions.IfNoneMatch matched (S3 304).
	ErrNotModified = errors.New("object not modified")
	// ErrPrecondition: a GetOptions.IfMatch did not match (S3 412).
	ErrPrecondition = errors.New("object precondition failed")
	// ErrTooLarge: the object does not fit in the caller's buffer.
	ErrTooLarge = errors.New("object larger than expected")
	// ErrStop, returned by a List callback, ends the listing early.
	ErrStop = errors.New("stop listing")
)

// Permanent marks an error that retrying cannot fix (bad credentials, no
// such bucket, a malformed request). Backends wrap such errors with it so
// the retry decorator gives up at once.
type Permanent struct{ Err error }

func (p *Permanent) Error() string { return p.Err.Error() }
func (p *Permanent) Unwrap() error { return p.Err }

// IsPermanent reports whether err is marked Permanent or is one of the
// definite answers above.
func IsPermanent(err error) bool {
	var p *Permanent
	return errors.As(err, &p) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotModified) ||
		errors.Is(err, ErrPrecondition) || errors.Is(err, ErrTooLarge) || errors.Is(err, context.Canceled)
}
