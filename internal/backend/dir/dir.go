// Package dir is the --test backend: one file per non-zero block in a local
// directory, named and laid out exactly as s3backer's test mode does, so the
// C s3backer and this program can share a test directory.
package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3backer-go/s3backer/internal/blockkey"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Options configure a directory store.
type Options struct {
	Dir        string // the "bucket" directory; must exist
	Prefix     string // prepended to every file name (may contain '/')
	HashPrefix bool   // --blockHashPrefix
	BlockSize  int
	NumBlocks  uint64
	ReadOnly   bool
	// RandomDelays sleeps 0-199 ms before each read and write
	// (--test-delays), to shake out ordering bugs in layers above.
	RandomDelays bool
	// Discard drops writes and reads zeroes (--test-discard), for measuring
	// the layers above without storage cost.
	Discard bool
}

// Store is a blockstore.Store and blockstore.Prober over a directory.
type Store struct {
	opt   Options
	names blockkey.Namer
	dir   *os.File // held open for syncfs
}

// Open checks that the directory exists and returns a store over it.
func Open(opt Options) (*Store, error) {
	d, err := os.Open(opt.Dir)
	if err != nil {
		return nil, fmt.Errorf("test directory: %w", err)
	}
	if st, err := d.Stat(); err != nil || !st.IsDir() {
		d.Close()
		if err == nil {
			err = fmt.Errorf("%s: not a directory", opt.Dir)
		}
		return nil, fmt.Errorf("test directory: %w", err)
	}
	return &Store{
		opt:   opt,
		names: blockkey.Namer{Prefix: opt.Prefix, HashPrefix: opt.HashPrefix, NumBlocks: opt.NumBlocks},
		dir:   d,
	}, nil
}

func (s *Store) BlockSize() int    { return s.opt.BlockSize }
func (s *Store) NumBlocks() uint64 { return s.opt.NumBlocks }

// Path is the file that holds block n.
func (s *Store) Path(n uint64) string {
	return filepath.Join(s.opt.Dir, s.names.Name(n))
}

func (s *Store) delay(ctx context.Context) error {
	if !s.opt.RandomDelays {
		return ctx.Err()
	}
	t := time.NewTimer(time.Duration(rand.IntN(200)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return err
	}
	if err := s.delay(ctx); err != nil {
		return fmt.Errorf("read block %d: %w", n, err)
	}
	if s.opt.Discard {
		clear(buf)
		return nil
	}
	path := s.Path(n)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		clear(buf)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read block %d: %w", n, err)
	}
	defer f.Close()
	got, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("read block %d: %s is truncated (%d of %d bytes): %w", n, path, got, len(buf), blockstore.ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("read block %d: %w", n, err)
	}
	return nil
}

func (s *Store) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	if err := blockstore.CheckBlock(s, n, data); err != nil {
		return err
	}
	if s.opt.ReadOnly {
		return fmt.Errorf("write block %d: %w", n, blockstore.ErrReadOnly)
	}
	if err := s.delay(ctx); err != nil {
		return fmt.Errorf("write block %d: %w", n, err)
	}
	if s.opt.Discard {
		return nil
	}
	path := s.Path(n)
	if data == nil || blockstore.IsZero(data) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete block %d: %w", n, err)
		}
		return nil
	}
	if err := writeAtomic(path, data); err != nil {
		return fmt.Errorf("write block %d: %w", n, err)
	}
	return nil
}

// writeAtomic writes data to a temporary file beside path and renames it
// into place, so a reader (or a crash) sees the old or the new block whole.
// The temporary name, "NAME.XXXXXX", is the C s3backer's, which its survey
// ignores.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if errors.Is(err, fs.ErrNotExist) {
		// A prefix with '/' puts blocks in subdirectories; make them.
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			f, err = os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
		}
	}
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		// Start writing the block out now, without waiting, so that the
		// next FLUSH (one syncfs) finds most of it on disk already instead
		// of writing everything at once. Advisory: an I/O error it meets
		// is reported by that syncfs.
		_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (s *Store) Presence(ctx context.Context, n uint64) (blockstore.Presence, error) {
	if err := blockstore.CheckBlock(s, n, nil); err != nil {
		return blockstore.Unknown, err
	}
	if s.opt.Discard {
		return blockstore.Absent, nil
	}
	_, err := os.Lstat(s.Path(n))
	switch {
	case err == nil:
		return blockstore.Present, nil
	case errors.Is(err, fs.ErrNotExist):
		return blockstore.Absent, nil
	default:
		return blockstore.Unknown, fmt.Errorf("stat block %d: %w", n, err)
	}
}

// Flush makes every completed write durable: one syncfs(2) of the
// directory's file system instead of an fsync per block file, so writes
// stay cheap and a flush costs one call.
func (s *Store) Flush(ctx context.Context) error {
	if s.opt.ReadOnly || s.opt.Discard {
		return nil
	}
	if err := unix.Syncfs(int(s.dir.Fd())); err != nil {
		return fmt.Errorf("flush %s: %w", s.opt.Dir, err)
	}
	return nil
}

func (s *Store) Close() error {
	err := s.Flush(context.Background())
	if cerr := s.dir.Close(); err == nil && cerr != nil && !errors.Is(cerr, syscall.EBADF) {
		err = cerr
	}
	return err
}
