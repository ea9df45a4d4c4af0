package main

import (
	"context"
	"log/slog"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/disk"
)

// diskOptions reads the password first: a prompt or a bad --passwordFile
// should not wait for the network.
func diskOptions(cfg *config.Config, log *slog.Logger) (disk.Options, error) {
	pw, err := diskPassword(cfg)
	return disk.Options{Password: pw, Logger: log}, err
}

// openDisk opens the whole stack and takes the 'already mounted' flag.
func openDisk(ctx context.Context, cfg *config.Config, log *slog.Logger) (*disk.Disk, error) {
	opt, err := diskOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	return disk.Open(ctx, cfg, opt)
}

// openStore opens the block store alone (for --erase).
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (blockstore.Store, backend.Backend, error) {
	opt, err := diskOptions(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return disk.OpenStore(ctx, cfg, opt)
}
