package blockstore

import (
	"context"
	"fmt"
	"syscall"
)

// PartReader is implemented by stores that can read part of a block for
// less than the whole block costs: a cache hit copies only the bytes asked
// for instead of a whole block (256 KiB for a 4 KiB read). The volume uses
// it for reads that do not cover a whole block; stores without it are read
// whole.
type PartReader interface {
	// ReadPart fills p with bytes [off, off+len(p)) of block n.
	ReadPart(ctx context.Context, n uint64, off int, p []byte) error
}

// CheckPart validates a partial read of len(p) bytes at off of block n of
// s, so every implementation reports misuse the same way.
func CheckPart(s Store, n uint64, off int, p []byte) error {
	if err := CheckBlock(s, n, nil); err != nil {
		return err
	}
	if bs := s.BlockSize(); off < 0 || off > bs || len(p) > bs-off {
		return fmt.Errorf("block %d: %d bytes at %d of a %d-byte block: %w", n, len(p), off, bs, syscall.EINVAL)
	}
	return nil
}
