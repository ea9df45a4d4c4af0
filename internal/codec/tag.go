package codec

import (
	"context"
	"errors"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// The codec is a blockstore.Tagger: a block's tag is its object's ETag,
// which a cache file records so that a restart can check its copy with a
// conditional GET instead of downloading the block again.
var _ blockstore.Tagger = (*Store)(nil)

// ReadBlockTag is ReadBlock that also returns the object's ETag ("" for a
// block not stored).
func (s *Store) ReadBlockTag(ctx context.Context, n uint64, buf []byte) (string, error) {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return "", err
	}
	found, etag, err := s.readOpt(ctx, n, buf, backend.GetOptions{})
	if err == nil && !found {
		clear(buf)
	}
	return etag, err
}

// ReadBlockIfChanged reads block n unless its object still has ETag tag:
// one GET with If-None-Match, answered 304 Not Modified when the cached
// copy is still good (s3backer's check of its cache file). tag "" expects
// no object: a plain GET, where 404 means unchanged.
func (s *Store) ReadBlockIfChanged(ctx context.Context, n uint64, tag string, buf []byte) (changed bool, newTag string, err error) {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return false, "", err
	}
	found, etag, err := s.readOpt(ctx, n, buf, backend.GetOptions{IfNoneMatch: tag})
	switch {
	case errors.Is(err, backend.ErrNotModified):
		return false, tag, nil
	case err != nil:
		return false, "", err
	case !found:
		if tag == "" {
			return false, "", nil
		}
		clear(buf)
		return true, "", nil
	}
	return true, etag, nil
}
