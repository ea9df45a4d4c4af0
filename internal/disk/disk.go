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
	"github.com/s3backer-go/s3backer/internal/backend/metered"
	"github.com/s3backer-go/s3backer/internal/backend/retry"
	"github.com/s3backer-go/s3backer/internal/backend/s3"
	"github.com/s3backer-go/s3backer/internal/blockkey"
	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/cache/cachefile"
	"github.com/s3backer-go/s3backer/internal/codec"
	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/ecprotect"
	"github.com/s3backer-go/s3backer/internal/exitcode"
	"github.com/s3backer-go/s3backer/internal/mounttoken"
	"github.com/s3backer-go/s3backer/internal/stats"
	"github.com/s3backer-go/s3backer/internal/volume"
	"github.com/s3backer-go/s3backer/internal/zero"
)

// Disk is the open storage stack every front end serves:
//
//	volume -> zero (known-zero blocks, survey) -> cache -> codec -> retry -> s3
//	(with --md5CacheSize: ... -> cache -> ecprotect -> codec -> ...)
//	volume -> zero -> cache -> dir                                  (--test)
type Disk struct {
	Volume *volume.Volume
	Zero   *zero.Store // nil with --sharedDiskMode
	lease  *mounttoken.Lease
	log    *slog.Logger
	stats  *stats.Registry
}

// Stats is the disk's statistics (the stats file, its mirror, metrics).
func (d *Disk) Stats() *stats.Registry { return d.stats }

// Options are what the stack needs beyond the configuration.
type Options struct {
	// Password is the encryption password (nil without --encrypt). The
	// caller reads it before Open so a prompt or a bad --passwordFile
	// never waits for the network.
	Password []byte
	Logger   *slog.Logger
	// Stats receives the counters of every layer (nil: Open makes one).
	Stats *stats.Registry
}

// OpenBackend connects to the bucket and checks, with one request, that
// it exists and the credentials work, so a bad start fails with one clear
// line instead of a stream of retries.
func OpenBackend(ctx context.Context, cfg *config.Config, log *slog.Logger) (backend.Backend, error) {
	return openBackend(ctx, cfg, log, stats.New())
}

// openBackend is OpenBackend counting into reg: every request, retries
// included (s3backer's http_* counters count each HTTP request), so the
// meter sits under the retries.
func openBackend(ctx context.Context, cfg *config.Config, log *slog.Logger, reg *stats.Registry) (backend.Backend, error) {
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
	// The geometry is not known yet: any block number names a block.
	blocks := blockkey.Namer{Prefix: cfg.Prefix, HashPrefix: cfg.BlockHashPrefix, NumBlocks: 1 << 32}
	m := metered.New(b, &reg.S3, metered.Options{
		HTTPStatus: s3.HTTPStatus,
		IsTimeout:  s3.IsTimeout,
		IsBlock:    func(key string) bool { _, ok := blocks.Parse(key); return ok },
	})
	r := retry.New(m, retry.Options{
		InitialPause: cfg.InitialRetryPause,
		MaxPause:     cfg.MaxRetryPause,
		Logger:       log,
	})
	reg.Watch(stats.Sources{Retry: r.Stats})
	return r, nil
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
	if opt.Stats == nil {
		opt.Stats = stats.New()
	}
	b, err := openBackend(ctx, cfg, log, opt.Stats)
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
func Open(ctx context.Context, cfg *config.Config, opt Options) (_ *Disk, err error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	log := opt.Logger
	if opt.Stats == nil {
		opt.Stats = stats.New()
	}
	st, b, err := OpenStore(ctx, cfg, opt)
	if err != nil {
		return nil, err
	}
	d := &Disk{log: log, stats: opt.Stats}
	d.stats.SetListBlocks(cfg.ListBlocks)

	// One way out on failure: everything opened so far is closed, and
	// the flag is cleared — unless it was taken over from a crashed run,
	// whose blocks the cache file still holds.
	var cf *cachefile.File
	var plan cachefile.Plan
	defer func() {
		if err == nil {
			return
		}
		if cf != nil {
			_ = cf.Close()
		}
		_ = st.Close()
		if d.lease != nil && plan.Accept == 0 {
			// Also when the open was cancelled: a flag left set would
			// refuse the next start.
			_ = d.lease.Release(context.WithoutCancel(ctx))
		}
	}()

	// The cache file is opened before the flag is taken: the token it
	// recorded lets a restart after a crash take the flag over.
	if cfg.BlockCacheFile != "" && cfg.BlockCacheSize > 0 && !cfg.SharedDiskMode {
		if cf, plan, err = openCacheFile(ctx, cfg, b, log); err != nil {
			return nil, err
		}
	}
	if b != nil {
		d.lease, err = mounttoken.Acquire(ctx, b, cfg.Prefix, mounttoken.AcquireOptions{
			Bucket:   cfg.Bucket,
			Force:    cfg.Force,
			ReadOnly: cfg.ReadOnly,
			Shared:   cfg.SharedDiskMode,
			Accept:   plan.Accept,
			Token:    plan.Token,
			Logger:   log,
		})
		if err != nil {
			return nil, err
		}
	}
	if cf != nil {
		if err := startCacheFile(cf, cfg, d.lease); err != nil {
			return nil, err
		}
	}
	// Eventual-consistency protection (--md5CacheSize and friends), off
	// unless asked for, directly above the codec and below the cache as
	// in s3backer. Config validation turns it off with --readOnly and
	// --sharedDiskMode.
	if cfg.MD5CacheSize > 0 || cfg.MD5CacheTime > 0 || cfg.MinWriteDelay > 0 {
		ec, err := ecprotect.New(st, ecprotect.Options{
			Size:              cfg.MD5CacheSize,
			Time:              cfg.MD5CacheTime,
			MinWriteDelay:     cfg.MinWriteDelay,
			InitialRetryPause: cfg.InitialRetryPause,
			MaxRetryPause:     cfg.MaxRetryPause,
			Logger:            log,
		})
		if err != nil {
			return nil, exitcode.UsageError{Err: err}
		}
		st = ec.Tagged()
		d.stats.Extra(ecprotectStats(ec))
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
			Slots:            cacheSlots(cf),
			NoVerify:         cfg.BlockCacheNoVerify,
			Logger:           log,
		})
		if err != nil {
			return nil, exitcode.UsageError{Err: err}
		}
		top = c
		d.stats.Watch(stats.Sources{Cache: c.Stats})
	}
	if !cfg.SharedDiskMode {
		d.Zero = zero.New(top, zero.Options{Survey: cfg.ListBlocks, Logger: log})
		top = d.Zero
		d.stats.Watch(stats.Sources{Zero: d.Zero.Stats})
	}
	d.Volume = volume.New(top, volume.Options{ReadOnly: cfg.ReadOnly})
	return d, nil
}

// ecprotectStats renders the MD5 cache's counters under s3backer's names.
func ecprotectStats(ec *ecprotect.Store) func() []stats.Line {
	return func() []stats.Line {
		s := ec.Stats()
		return []stats.Line{
			{Name: "md5_cache_current_size", Value: fmt.Sprint(s.Entries)},
			{Name: "md5_cache_data_hits", Value: fmt.Sprint(s.ZeroHits)},
			{Name: "md5_cache_full_delays", Value: fmt.Sprintf("%.3f sec", s.FullWait.Seconds())},
			{Name: "md5_cache_write_delays", Value: fmt.Sprintf("%.3f sec", s.WriteWait.Seconds())},
			{Name: "md5_cache_verified", Value: fmt.Sprint(s.Verified)},
			{Name: "md5_cache_stale_reads", Value: fmt.Sprint(s.StaleReads)},
			{Name: "md5_cache_stale_give_ups", Value: fmt.Sprint(s.GiveUps)},
		}
	}
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
