package codec

import (
	"context"
	"fmt"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// ZeroBlocks makes blocks zero blocks by deleting their objects in bulk
// (S3 DeleteObjects, up to 1000 keys a request) instead of one DELETE each.
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
	if err := s.b.DeleteMany(ctx, keys); err != nil {
		return fmt.Errorf("zero %d blocks (%d..): %w", len(blocks), blocks[0], err)
	}
	return nil
}
