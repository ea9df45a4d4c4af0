package codec

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// deleteParallel bounds the DELETEs in flight for one ZeroBlocks on a
// store that has no bulk delete.
const deleteParallel = 16

// ZeroBlocks makes blocks zero blocks by deleting their objects in bulk
// (S3 DeleteObjects, up to 1000 keys a request) instead of one DELETE each
// — or, on a store found to have no bulk delete, one DELETE each, several
// at once.
func (s *Store) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	if len(blocks) == 0 {
		return nil
	}
	keys := make([]string, len(blocks))
	for i, n := range blocks {
		if err := blockstore.CheckBlock(s, n, nil); err != nil {
			return err
		}
		keys[i] = s.names.Name(n)
	}
	if !s.noBulkDelete.Load() {
		err := s.b.DeleteMany(ctx, keys)
		if !errors.Is(err, errors.ErrUnsupported) {
			if err != nil {
				return fmt.Errorf("zero %d blocks (%d..): %w", len(blocks), blocks[0], err)
			}
			return nil
		}
		if s.noBulkDelete.CompareAndSwap(false, true) {
			s.log.Warn("the store has no multi-object delete: deleting blocks one request each", "err", err)
		}
	}
	if err := s.deleteEach(ctx, keys); err != nil {
		return fmt.Errorf("zero %d blocks (%d..): %w", len(blocks), blocks[0], err)
	}
	return nil
}

// deleteEach deletes keys one request each, deleteParallel at a time.
func (s *Store) deleteEach(ctx context.Context, keys []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallel)
	for _, k := range keys {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return s.b.Delete(gctx, k) })
	}
	return g.Wait()
}
