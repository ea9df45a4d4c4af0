// Package mem is an in-memory backend.Backend for unit tests of the layers
// above it (codec, mount token, survey). It counts requests so tests can
// assert how many a workload cost. Real runs use the s3 backend.
package mem

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/s3backer-go/s3backer/internal/backend"
)

type object struct {
	body []byte
	info backend.Info
}

// Counts are the requests a Backend has served, by kind.
type Counts struct {
	Gets, Heads, Puts, Deletes, DeleteManys, Lists int64
}

// Backend keeps objects in a map.
type Backend struct {
	mu      sync.RWMutex
	objects map[string]object

	gets, heads, puts, deletes, deleteManys, lists atomic.Int64
}

// New returns an empty backend.
func New() *Backend { return &Backend{objects: make(map[string]object)} }

// Counts returns the requests served so far.
func (b *Backend) Counts() Counts {
	return Counts{b.gets.Load(), b.heads.Load(), b.puts.Load(), b.deletes.Load(), b.deleteManys.Load(), b.lists.Load()}
}

// Keys returns the stored keys in order.
func (b *Backend) Keys() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Sorted(maps.Keys(b.objects))
}

func (b *Backend) Get(ctx context.Context, key string, buf []byte, opt backend.GetOptions) (int, backend.Info, error) {
	b.gets.Add(1)
	if err := ctx.Err(); err != nil {
		return 0, backend.Info{}, err
	}
	b.mu.RLock()
	o, ok := b.objects[key]
	b.mu.RUnlock()
	switch {
	case !ok:
		return 0, backend.Info{}, fmt.Errorf("get %s: %w", key, backend.ErrNotFound)
	case opt.IfNoneMatch != "" && opt.IfNoneMatch == o.info.ETag:
		return 0, o.info, fmt.Errorf("get %s: %w", key, backend.ErrNotModified)
	case opt.IfMatch != "" && opt.IfMatch != o.info.ETag:
		return 0, o.info, fmt.Errorf("get %s: %w", key, backend.ErrPrecondition)
	case len(o.body) > len(buf):
		return 0, o.info, fmt.Errorf("get %s: %d bytes: %w", key, len(o.body), backend.ErrTooLarge)
	}
	return copy(buf, o.body), cloneInfo(o.info), nil
}

func (b *Backend) Head(ctx context.Context, key string) (backend.Info, error) {
	b.heads.Add(1)
	if err := ctx.Err(); err != nil {
		return backend.Info{}, err
	}
	b.mu.RLock()
	o, ok := b.objects[key]
	b.mu.RUnlock()
	if !ok {
		return backend.Info{}, fmt.Errorf("head %s: %w", key, backend.ErrNotFound)
	}
	return cloneInfo(o.info), nil
}

func (b *Backend) Put(ctx context.Context, key string, body []byte, meta backend.Meta) (string, error) {
	b.puts.Add(1)
	if err := ctx.Err(); err != nil {
		return "", err
	}
	sum := md5.Sum(body)
	etag := hex.EncodeToString(sum[:])
	user := make(map[string]string, len(meta.User))
	for k, v := range meta.User {
		user[strings.ToLower(k)] = v
	}
	meta.User = user
	b.mu.Lock()
	b.objects[key] = object{bytes.Clone(body), backend.Info{Size: int64(len(body)), ETag: etag, Meta: meta}}
	b.mu.Unlock()
	return etag, nil
}

func (b *Backend) Delete(ctx context.Context, key string) error {
	b.deletes.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.objects, key)
	b.mu.Unlock()
	return nil
}

func (b *Backend) DeleteMany(ctx context.Context, keys []string) error {
	// One request per 1000 keys, as S3 counts them.
	b.deleteManys.Add(int64((len(keys) + 999) / 1000))
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	for _, k := range keys {
		delete(b.objects, k)
	}
	b.mu.Unlock()
	return nil
}

func (b *Backend) List(ctx context.Context, prefix, startAfter string, fn func(key string) error) error {
	b.lists.Add(1)
	for _, k := range b.Keys() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !strings.HasPrefix(k, prefix) || k <= startAfter {
			continue
		}
		if err := fn(k); err != nil {
			if err == backend.ErrStop {
				return nil
			}
			return err
		}
	}
	return nil
}

func cloneInfo(i backend.Info) backend.Info {
	i.User = maps.Clone(i.User)
	return i
}
