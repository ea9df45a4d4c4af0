// Package disk opens the storage stack every front end serves (NBD server,
// kernel device, FUSE file, nbdkit plugin) from a parsed configuration, and
// takes and releases the 'already mounted' flag around it.
package disk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/dir"
	"github.com/s3backer-go/s3backer/internal/backend/retry"
	"github.com/s3backer-go/s3backer/internal/backend/s3"
	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/codec"
	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/exitcode"
	"github.com/s3backer-go/s3backer/internal/mounttoken"
	"github.com/s3backer-go/s3backer/internal/volume"
	"github.com/s3backer-go/s3backer/internal/zero"
)

// Disk is the open storage stack every front end serves:
//
//	volume -> zero (known-zero blocks, survey) -> cache -> codec -> retry -> s3
//	volume -> zero -> cache -> dir                                  (--test)
type Disk struct {
	Volume *volume.Volume
	Zero   *zero.Store // nil with --sharedDiskMode
	lease  *mounttoken.Lease
	log    *slog.Logger
}

// Options are what the stack needs beyond the configuration.
type Options struct {
	// Password is the encryption password (nil without --encrypt). The
	// caller reads it before Open so a prompt or a bad --passwordFile
	// never waits for the network.
	Password []byte
	Logger   *slog.Logger
}

// OpenBackend connects to the bucket and checks, with one request, that
// it exists and the credentials work, so a bad start fails with one clear
// line instead of a stream of retries.
func OpenBackend(ctx context.Context, cfg *config.Config, log *slog.Logger) (backend.Backend, error) {
	opt, err := s3.OptionsFromConfig(cfg)
	if err != nil {
		return nil, exitcode.UsageError{Err: err}
	}
	opt.Logger = log
	b, err := s3.New(ctx, opt)
	if err != nil {
		return nil, err
	}
	if err := b.CheckBucket(ctx); err != nil {
		return nil, err
	}
	return retry.New(b, retry.Options{
		InitialPause: cfg.InitialRetryPause,
		MaxPause:     cfg.MaxRetryPause,
		Logger:       log,
	}), nil
}

// detectGeometry reads size and block size from block 0 (unless disabled)
// and settles the configuration's geometry.
func detectGeometry(ctx context.Context, cfg *config.Config, b backend.Backend, log *slog.Logger) error {
	var size, bs int64
	if cfg.AutoDetect() {
		var found bool
		var err error
		size, bs, found, err = codec.Detect(ctx, b, cfg.Prefix, cfg.BlockHashPrefix)
		switch {
		case errors.Is(err, codec.ErrSizeSuspect) && cfg.IsSet("size"):
			log.Warn("ignoring the size stored in block 0", "err", err)
			size, bs = 0, 0
		case err != nil:
			return err
		case found:
			log.Info("auto-detected geometry", "blockSize", config.FormatSize(bs), "size", config.FormatSize(size))
		default:
			size, bs = 0, 0
			log.Debug("auto-detection found no size in block 0")
		}
	}
	warnings, err := cfg.Finish(size, bs)
	if err != nil {
		return exitcode.UsageError{Err: err}
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	return nil
}

// OpenStore returns the block store under the zero layer: the --test
// directory, or the bucket through the codec. With S3 it also detects the
// geometry and returns the backend for the mount token.
func OpenStore(ctx context.Context, cfg *config.Config, opt Options) (blockstore.Store, backend.Backend, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	log := opt.Logger
	if cfg.Test {
		// s3backer does no auto-detection in test mode: flags only.
		if err := detectGeometry(ctx, cfg, nil, log); err != nil {
			return nil, nil, err
		}
		testDir, err := filepath.Abs(cfg.TestDir())
		if err != nil {
			return nil, nil, err
		}
		st, err := dir.Open(dir.Options{
			Dir:          testDir,
			Prefix:       cfg.Prefix,
			HashPrefix:   cfg.BlockHashPrefix,
			BlockSize:    int(cfg.BlockSize),
			NumBlocks:    cfg.NumBlocks(),
			ReadOnly:     cfg.ReadOnly,
			RandomDelays: cfg.TestDelays,
			Discard:      cfg.TestDiscard,
		})
		return st, nil, err
	}
	b, err := OpenBackend(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if err := detectGeometry(ctx, cfg, b, log); err != nil {
		return nil, nil, err
	}
	// Open, not New: one GET of the key info tells an AES-256-GCM disk
	// (and makes its key), so a disk is never opened in the wrong mode.
	st, err := codec.Open(ctx, b, codec.OptionsFromConfig(cfg, opt.Password, log))
	if err != nil {
		return nil, nil, err
	}
	// A wrong password or cipher is caught here, before serving, not
	// block by block later (s3backer's issue #254): block 0, else the
	// first stored block of the disk.
	if cfg.Encrypt != "" {
		if err := checkKey(ctx, st); err != nil {
			return nil, nil, err
		}
	}
	return st, b, nil
}

// Open builds the whole stack and takes the 'already mounted' flag.
func Open(ctx context.Context, cfg *config.Config, opt Options) (*Disk, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	log := opt.Logger
	st, b, err := OpenStore(ctx, cfg, opt)
	if err != nil {
		return nil, err
	}
	d := &Disk{log: log}
	if b != nil {
		d.lease, err = mounttoken.Acquire(ctx, b, cfg.Prefix, mounttoken.AcquireOptions{
			Bucket:   cfg.Bucket,
			Force:    cfg.Force,
			ReadOnly: cfg.ReadOnly,
			Shared:   cfg.SharedDiskMode,
			Logger:   log,
		})
		if err != nil {
			_ = st.Close()
			return nil, err
		}
	}
	// With --sharedDiskMode other hosts write the same blocks: nothing
	// may be remembered about them, so neither the cache nor the zero
	// layer is stacked.
	top := st
	if cfg.BlockCacheSize > 0 && !cfg.SharedDiskMode {
		c, err := cache.New(st, cache.Options{
			Size:             cfg.BlockCacheSize,
			Threads:          cfg.BlockCacheThreads,
			WriteDelay:       cfg.BlockCacheWriteDelay,
			MaxDirty:         cfg.BlockCacheMaxDirty,
			Sync:             cfg.BlockCacheSync,
			Timeout:          cfg.BlockCacheTimeout,
			NumProtected:     uint64(cfg.BlockCacheNumProtected),
			ReadAhead:        cfg.ReadAhead,
			ReadAheadTrigger: cfg.ReadAheadTrigger,
			Logger:           log,
		})
		if err != nil {
			_ = st.Close()
			if d.lease != nil {
				_ = d.lease.Release(ctx)
			}
			return nil, exitcode.UsageError{Err: err}
		}
		top = c
	}
	if !cfg.SharedDiskMode {
		d.Zero = zero.New(top, zero.Options{Survey: cfg.ListBlocks, Logger: log})
		top = d.Zero
	}
	d.Volume = volume.New(top, volume.Options{ReadOnly: cfg.ReadOnly})
	return d, nil
}

// Close flushes everything, closes the stack and, only if all data is
// safely stored, clears the 'already mounted' flag.
func (d *Disk) Close(ctx context.Context) error {
	err := d.Volume.Flush(ctx)
	if err != nil {
		err = fmt.Errorf("final flush: %w", err)
	}
	if cerr := d.Volume.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close: %w", cerr))
	}
	if d.lease == nil {
		return err
	}
	if err != nil {
		d.log.Error("leaving the 'already mounted' flag in place: data may not all be stored", "err", err)
		return err
	}
	if rerr := d.lease.Release(ctx); rerr != nil {
		return fmt.Errorf("clear the 'already mounted' flag: %w", rerr)
	}
	return nil
}
