package disk

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/cache/cachefile"
	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/mounttoken"
)

// openCacheFile opens --blockCacheFile and decides, from the 'already
// mounted' flag as it is now (b nil: --test, no flag), what becomes of
// the blocks it holds. It writes nothing: a refusal, here or by the flag,
// leaves the file as it was. The plan says which flag token to accept
// (this file's crashed mount) and which to write.
func openCacheFile(ctx context.Context, cfg *config.Config, b backend.Backend, log *slog.Logger) (*cachefile.File, cachefile.Plan, error) {
	f, err := cachefile.Open(cachefile.Options{
		Path:      cfg.BlockCacheFile,
		BlockSize: int(cfg.BlockSize),
		NumBlocks: cfg.NumBlocks(),
		Slots:     cfg.BlockCacheSize,
		Advise:    cfg.BlockCacheFileAdvise,
		Logger:    log,
	})
	if err != nil {
		return nil, cachefile.Plan{}, err
	}
	p := cachefile.Policy{
		Test:         b == nil,
		RecoverDirty: cfg.BlockCacheRecoverDirtyBlocks,
		Force:        cfg.Force,
		ReadOnly:     cfg.ReadOnly,
	}
	if b != nil {
		if p.Flag, p.FlagSet, err = mounttoken.Read(ctx, b, cfg.Prefix); err != nil {
			_ = f.Close()
			return nil, cachefile.Plan{}, fmt.Errorf("reading the 'already mounted' flag: %w", err)
		}
	}
	plan, err := f.Plan(p)
	if err != nil {
		_ = f.Close()
		return nil, cachefile.Plan{}, err
	}
	if f.Found() > 0 {
		log.Info("cache file holds blocks from the last run", "file", cfg.BlockCacheFile, "blocks", f.Found(), "dirty", f.Dirty())
	}
	return f, plan, nil
}

// startCacheFile stamps the file with this run's mount token (kept as it
// was for a read-only run, which writes no flag) and applies the plan.
func startCacheFile(f *cachefile.File, cfg *config.Config, lease *mounttoken.Lease) error {
	token := f.Token()
	if lease != nil && !cfg.ReadOnly {
		token = lease.Token()
	}
	if lease == nil {
		token = 0 // --test
	}
	return f.Start(token)
}

// cacheSlots is the cache's slot store: the file, or nil (memory).
func cacheSlots(f *cachefile.File) cache.Slots {
	if f == nil {
		return nil
	}
	return f
}
