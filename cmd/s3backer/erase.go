package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/disk"
	"github.com/s3backer-go/s3backer/internal/logging"
	"github.com/s3backer-go/s3backer/internal/mounttoken"
)

// eraseBatch is one bulk delete (S3 DeleteObjects takes 1000 keys).
const eraseBatch = 1000

// erase deletes every block of the disk and the 'already mounted' flag
// (s3backer --erase). Unlike s3backer it refuses a disk that is flagged as
// mounted unless --force, and it deletes in bulk.
func erase(cfg *config.Config, stdin io.Reader, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logging.New(logging.Options{Debug: cfg.Debug})
	st, b, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	where := cfg.BucketArg
	if b != nil && !cfg.Force {
		if tok, present, err := mounttoken.Read(ctx, b, cfg.Prefix); err != nil {
			return err
		} else if present {
			return fmt.Errorf("%s appears to be mounted (mount token 0x%08x); stop it first, or use --force", where, tok)
		}
	}
	if !cfg.Force {
		fmt.Fprintf(stderr, "s3backer: this will erase every block of %s (%d blocks of %s)\n",
			where, cfg.NumBlocks(), config.FormatSize(cfg.BlockSize))
		fmt.Fprint(stderr, "s3backer: is this correct? [y/N] ")
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("not confirmed; nothing erased")
		}
	}
	blocks, err := surveyAll(ctx, st, stderr, cfg.Quiet)
	if err != nil {
		return err
	}
	if err := zeroAll(ctx, st, blocks, stderr, cfg.Quiet); err != nil {
		return err
	}
	if b != nil {
		if err := mounttoken.Clear(ctx, b, cfg.Prefix); err != nil {
			return err
		}
	}
	if !cfg.Quiet {
		fmt.Fprintf(stderr, "s3backer: erased %d blocks of %s\n", len(blocks), where)
	}
	return nil
}

// surveyAll lists the stored blocks, sorted and without duplicates.
func surveyAll(ctx context.Context, st blockstore.Store, stderr io.Writer, quiet bool) ([]uint64, error) {
	sv, ok := st.(blockstore.Surveyor)
	if !ok {
		return nil, errors.New("this store cannot list its blocks")
	}
	var mu sync.Mutex
	var blocks []uint64
	p := newProgress(stderr, "listing blocks", -1, quiet)
	err := sv.Survey(ctx, func(n uint64) {
		mu.Lock()
		blocks = append(blocks, n)
		mu.Unlock()
		p.Add(1)
	})
	p.Finish()
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	slices.Sort(blocks)
	return slices.Compact(blocks), nil
}

// zeroAll deletes blocks, in bulk when the store can, showing progress.
func zeroAll(ctx context.Context, st blockstore.Store, blocks []uint64, stderr io.Writer, quiet bool) error {
	p := newProgress(stderr, "erasing", int64(len(blocks)), quiet)
	defer p.Finish()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	bz, bulk := st.(blockstore.BulkZeroer)
	for i := 0; i < len(blocks); i += eraseBatch {
		batch := blocks[i:min(i+eraseBatch, len(blocks))]
		g.Go(func() error {
			if bulk {
				if err := bz.ZeroBlocks(gctx, batch); err != nil {
					return err
				}
			} else {
				for _, n := range batch {
					if err := st.WriteBlock(gctx, n, nil); err != nil {
						return err
					}
				}
			}
			p.Add(int64(len(batch)))
			return nil
		})
	}
	return g.Wait()
}

// resetMountedFlag clears the 'already mounted' flag
// (s3backer --reset-mounted-flag).
func resetMountedFlag(cfg *config.Config, stderr io.Writer) error {
	if cfg.Test {
		fmt.Fprintln(stderr, "s3backer: test mode keeps no 'already mounted' flag; nothing to reset")
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logging.New(logging.Options{Debug: cfg.Debug})
	b, err := disk.OpenBackend(ctx, cfg, log)
	if err != nil {
		return err
	}
	tok, present, err := mounttoken.Read(ctx, b, cfg.Prefix)
	if err != nil {
		return err
	}
	if !present {
		if !cfg.Quiet {
			fmt.Fprintf(stderr, "s3backer: %s is not flagged as mounted; nothing to reset\n", cfg.BucketArg)
		}
		return nil
	}
	if err := mounttoken.Clear(ctx, b, cfg.Prefix); err != nil {
		return err
	}
	if !cfg.Quiet {
		fmt.Fprintf(stderr, "s3backer: cleared the 'already mounted' flag of %s (mount token 0x%08x)\n", cfg.BucketArg, tok)
	}
	return nil
}
