// Command nbdkit is the Go half of s3backer's nbdkit plugin, built with
// -buildmode=c-shared as libs3backer-nbdkit.so. nbdkit loads the C half,
// nbdkit-s3backer-plugin.so (shim/plugin.c), which loads this library only
// in the process that serves: a Go runtime does not survive the fork nbdkit
// makes to daemonize (its threads are gone in the child and the first
// garbage collection or blocking call hangs), so it must start after it.
//
// The disk is the same one the s3backer binary serves (internal/disk), and
// the parameters are s3backer's flags (config.ParseParams), so every
// message is the same as on the command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/disk"
	"github.com/s3backer-go/s3backer/internal/password"
	"github.com/s3backer-go/s3backer/internal/volume"
)

func main() {}

// plugin is the open disk; one per process, shared by every connection.
type plugin struct {
	cfg     *config.Config
	disk    *disk.Disk
	vol     *volume.Volume
	log     *slog.Logger
	publish func() // stops --metricsListen and --statsFileMirror
}

// parse turns nbdkit's key=value parameters into a checked configuration.
func parse(params [][2]string) (*config.Config, error) {
	cfg, err := config.ParseParams(params)
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckImplemented(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate checks the parameters and reads the encryption password (nil
// without --encrypt), prompting on the terminal if no --password or
// --passwordFile gives it. It runs before nbdkit serves (and forks), so
// that a bad parameter stops nbdkit with our message on its stderr.
func validate(params [][2]string) (pw []byte, err error) {
	cfg, err := parse(params)
	if err != nil {
		return nil, err
	}
	return password.FromConfig(cfg, nil)
}

// start opens the disk in the serving process. dir is the working
// directory nbdkit had when it read its parameters: nbdkit moves to "/"
// when it daemonizes, and relative paths (the --test directory, config,
// password and credential files) mean the user's directory.
func start(params [][2]string, pw []byte, dir string, newLog func(debug bool) *slog.Logger) (*plugin, error) {
	if dir != "" {
		if old, err := os.Getwd(); err == nil && old != dir {
			if err := os.Chdir(dir); err != nil {
				return nil, err
			}
			// Nothing serves yet: no other thread depends on the
			// directory while it is changed.
			defer func() { _ = os.Chdir(old) }()
		}
	}
	cfg, err := parse(params)
	if err != nil {
		return nil, err
	}
	log := newLog(cfg.Debug)
	if !cfg.Quiet {
		for _, w := range cfg.Warnings {
			log.Warn(w)
		}
	}
	if pw == nil {
		if pw, err = password.FromConfig(cfg, nil); err != nil {
			return nil, err
		}
	}
	d, err := disk.Open(context.Background(), cfg, disk.Options{Password: pw, Logger: log})
	if err != nil {
		return nil, err
	}
	stopPublishing, err := d.Publish(cfg)
	if err != nil {
		_ = d.Close(context.Background())
		return nil, err
	}
	log.Info("serving", "bucket", cfg.BucketArg, "size", d.Volume.Size(), "blockSize", cfg.BlockSize)
	return &plugin{cfg: cfg, disk: d, vol: d.Volume, log: log, publish: stopPublishing}, nil
}

// stop flushes the disk and clears the 'already mounted' flag.
func (p *plugin) stop() error {
	defer p.publish() // after the close: the mirror's last write shows the final flush
	if err := p.disk.Close(context.Background()); err != nil {
		return err
	}
	p.log.Info("stopped cleanly")
	return nil
}

// Limits of nbdkit's block_size callback: a preferred size is a power of
// two from 512 bytes to 32 MiB.
const (
	minPreferred = 512
	maxPreferred = 32 << 20
)

// blockSizes are the block size constraints announced to clients: any
// alignment works (partial blocks are read-modify-written), the preferred
// size is the s3backer block (or the nearest power of two nbdkit allows),
// and requests may be as large as the largest preferred size.
func blockSizes(blockSize int64) (minimum, preferred, maximum uint32) {
	preferred = minPreferred
	for int64(preferred)*2 <= min(blockSize, maxPreferred) {
		preferred *= 2
	}
	return 1, preferred, maxPreferred
}

// Extent types of nbdkit_add_extent.
const (
	extentHole = 1 << 0
	extentZero = 1 << 1
)

// extents reports the allocation of [off, off+count) to add: holes
// (blocks not stored) read as zeroes. With reqOne only the first extent is
// needed.
func (p *plugin) extents(off int64, count int64, reqOne bool, add func(off, length int64, typ uint32) error) error {
	ext, err := p.vol.Extents(context.Background(), off, count)
	if err != nil {
		return err
	}
	for _, e := range ext {
		var typ uint32
		if e.Hole {
			typ = extentHole | extentZero
		}
		if err := add(off, e.Length, typ); err != nil {
			return err
		}
		if reqOne {
			break
		}
		off += e.Length
	}
	return nil
}

// errnoOf is the errno nbdkit sends for err: the one it carries, EIO
// otherwise (ESHUTDOWN when cancelled by a shutdown).
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	switch {
	case errors.As(err, &e) && e != 0:
		return e
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return syscall.ESHUTDOWN
	}
	return syscall.EIO
}

// opError describes a failed request for nbdkit's log.
func opError(op string, count int64, off int64, err error) error {
	return fmt.Errorf("%s of %d bytes at offset %d: %w", op, count, off, err)
}
