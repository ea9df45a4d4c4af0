package main

import (
	"context"
	"log/slog"
	"os"

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

// openDisk opens the whole stack and takes the 'already mounted' flag. A
// stop signal on sigs meanwhile cancels the open (with S3 unreachable, a
// start retries each request for up to --maxRetryPause) and releases what
// it took; stopped then names the signal, and there is no disk and no
// error: a stop was asked for, and done.
func openDisk(cfg *config.Config, log *slog.Logger, sigs <-chan os.Signal) (d *disk.Disk, stopped os.Signal, err error) {
	opt, err := diskOptions(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opened, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case stopped = <-sigs:
			cancel()
		case <-opened:
		}
	}()
	d, err = disk.Open(ctx, cfg, opt)
	close(opened)
	<-watched
	if stopped == nil {
		return d, nil, err
	}
	log.Info("stopping while the disk opens", "signal", stopped.String())
	if err == nil {
		// It opened as the signal came: close it again (clears the flag).
		if err := d.Close(context.Background()); err != nil {
			return nil, stopped, err
		}
	}
	return nil, stopped, nil
}

// openStore opens the block store alone (for --erase).
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (blockstore.Store, backend.Backend, error) {
	opt, err := diskOptions(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return disk.OpenStore(ctx, cfg, opt)
}
