package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/daemon"
	"github.com/s3backer-go/s3backer/internal/exitcode"
	"github.com/s3backer-go/s3backer/internal/fusefs"
	"github.com/s3backer-go/s3backer/internal/sdnotify"
)

// serveFUSE mounts the disk as a file at cfg.Target and serves it until a
// signal or an unmount, daemonizing first unless -f/-d. Either way the
// process ends only after the disk is flushed and the 'already mounted'
// flag cleared.
func serveFUSE(cfg *config.Config, stderr io.Writer) error {
	// Bad options and a missing mount point fail here, on the terminal,
	// before anything is opened.
	settings, err := fusefs.ParseOptions(cfg.FuseOptions)
	if err != nil {
		return exitcode.UsageError{Err: err}
	}
	if settings.FsName == "" {
		settings.FsName = description(cfg)
	}
	if cfg.FuseDebug {
		settings.Debug = true
	}
	mountpoint, err := filepath.Abs(cfg.Target)
	if err != nil {
		return exitcode.UsageError{Err: err}
	}
	if err := fusefs.CheckMountpoint(mountpoint); err != nil {
		return exitcode.UsageError{Err: err}
	}
	// A stop requested while the disk opens cancels the open, or is acted
	// on by not mounting.
	log, sigs, release, detached, err := startService(cfg, stderr, fmt.Sprintf("mounting %s on %s", cfg.BucketArg, mountpoint))
	if detached || err != nil {
		return err
	}
	defer release()

	d, stopped, err := openDisk(cfg, log, sigs)
	if err != nil || stopped != nil {
		return err
	}
	stopObserving, err := observe(cfg, d, stderr)
	if err != nil {
		return closeDisk(d, log, err)
	}
	defer stopObserving() // after the disk's close: the mirror's last write shows the final flush
	select {
	case sig := <-sigs:
		log.Info("stopping before mounting", "signal", sig.String())
		return closeDisk(d, log, nil)
	default:
	}
	fs := fusefs.New(d.Volume, fusefs.Options{
		Filename:      cfg.Filename,
		StatsFilename: cfg.StatsFilename,
		Stats:         d.Stats(),
		FileMode:      cfg.FileMode,
		DirectIO:      cfg.DirectIO,
		Settings:      settings,
		Logger:        log,
	})
	srv, err := fusefs.Mount(mountpoint, fs, fusefs.MountOptions{
		SingleThreaded: cfg.SingleThreaded,
		DebugLog:       debugLog(log),
	})
	if err != nil {
		return closeDisk(d, log, err)
	}
	log.Info("mounted", "bucket", cfg.BucketArg, "mountpoint", mountpoint, "file", cfg.Filename,
		"size", cfg.Size, "blockSize", cfg.BlockSize)
	daemon.Ready()

	select {
	case sig := <-sigs:
		log.Info("stopping", "signal", sig.String())
		_, _ = sdnotify.Notify("STOPPING=1")
		unmount(srv, log)
	case <-srv.Done():
		log.Info("unmounted; stopping", "mountpoint", mountpoint)
		_, _ = sdnotify.Notify("STOPPING=1")
	}
	return closeDisk(d, log, nil)
}

// unmount ends the mount for a stop signal. While the file is in use (a
// loop device on it) the kernel refuses; then the mount is detached from
// the namespace and its users are served until they close the file, for
// at most shutdownTimeout, after which the connection is aborted and
// their I/O fails. Either way every write acknowledged before is flushed
// by closeDisk.
func unmount(srv *fusefs.Server, log *slog.Logger) {
	err := srv.Unmount()
	if err == nil {
		return
	}
	log.Warn("the mount is in use; detaching it and waiting for its users to close the file",
		"err", err, "timeout", shutdownTimeout)
	if err := srv.Detach(); err != nil {
		log.Error("detach failed", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	select {
	case <-srv.Done():
		return
	case <-ctx.Done():
	}
	log.Warn("the file is still open; aborting the FUSE connection")
	actx, acancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer acancel()
	if err := srv.Abort(actx); err != nil {
		log.Error("abort failed; flushing the disk with the file still in use", "err", err)
	}
}

// debugLog sends go-fuse's request log (-d) to our log.
func debugLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}

// description names the disk in /proc/mounts and df, as s3backer's
// fsname does: the URL of the bucket and prefix.
func description(cfg *config.Config) string {
	if cfg.Test {
		dir, err := filepath.Abs(cfg.TestDir())
		if err != nil {
			dir = cfg.TestDir()
		}
		return "file://" + dir + "/" + cfg.Prefix
	}
	base := cfg.ResolvedBaseURL()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if cfg.UseVhost() {
		if scheme, rest, ok := strings.Cut(base, "://"); ok {
			return scheme + "://" + cfg.Bucket + "." + rest + cfg.Prefix
		}
	}
	return base + cfg.Bucket + "/" + cfg.Prefix
}
