package main

import (
	"context"

	"github.com/s3backer-go/s3backer/internal/nbd"
	"github.com/s3backer-go/s3backer/internal/volume"
)

// nbdDevice adapts a Volume to what the NBD server exports. The volume
// knows nothing of NBD flags: zeroing is always at least as fast as writing
// (whole blocks are deletes), so FAST_ZERO needs no check, and trim is a
// zeroing (s3backer does the same, so reads after a trim are defined).
type nbdDevice struct{ *volume.Volume }

func (d nbdDevice) Zero(ctx context.Context, off, length int64, f nbd.ZeroFlags) error {
	return d.Volume.Zero(ctx, off, length, f.FUA)
}

func (d nbdDevice) Trim(ctx context.Context, off, length int64, fua bool) error {
	return d.Volume.Zero(ctx, off, length, fua)
}

func (d nbdDevice) Extents(ctx context.Context, off, length int64) ([]nbd.Extent, error) {
	ext, err := d.Volume.Extents(ctx, off, length)
	if err != nil {
		return nil, err
	}
	out := make([]nbd.Extent, len(ext))
	for i, e := range ext {
		out[i] = nbd.Extent{Length: e.Length, Hole: e.Hole, Zero: e.Hole}
	}
	return out, nil
}
