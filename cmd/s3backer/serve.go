package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/daemon"
	"github.com/s3backer-go/s3backer/internal/disk"
	"github.com/s3backer-go/s3backer/internal/exitcode"
	"github.com/s3backer-go/s3backer/internal/logging"
	"github.com/s3backer-go/s3backer/internal/nbd"
	"github.com/s3backer-go/s3backer/internal/sdnotify"
)

// shutdownTimeout bounds how long a stop waits for clients' requests in
// flight before closing their connections anyway (the flush still runs).
const shutdownTimeout = 60 * time.Second

// serveNBD serves the disk at cfg.Target until a signal, daemonizing first
// unless -f/-d.
func serveNBD(cfg *config.Config, stderr io.Writer) error {
	target, err := parseNBDTarget(cfg.Target)
	if err != nil {
		return exitcode.UsageError{Err: err}
	}
	if useNBDKit(cfg) { // --nbd-flag, --nbd-param: see nbdkit.go
		return serveNBDKit(cfg, target, stderr)
	}
	if target.device != "" {
		return serveKernel(cfg, target.device, stderr)
	}
	// Signals are caught from the start: one while the disk opens cancels
	// the open, one right after start-up is never lost.
	log, sigs, release, detached, err := startService(cfg, stderr, fmt.Sprintf("serving %s at %s", cfg.BucketArg, cfg.Target))
	if detached || err != nil {
		return err
	}
	defer release()

	ctx := context.Background()
	d, stopped, err := openDisk(cfg, log, sigs)
	if err != nil || stopped != nil {
		return err
	}
	stopObserving, err := observe(cfg, d, stderr)
	if err != nil {
		_ = d.Close(ctx)
		return err
	}
	defer stopObserving() // after the disk's close: the mirror's last write shows the final flush
	ln, err := target.listen()
	if err != nil {
		_ = d.Close(ctx)
		return err
	}
	srv := newServer(cfg, d, log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	uri := target.uri(ln)
	log.Info("serving", "bucket", cfg.BucketArg, "size", cfg.Size, "blockSize", cfg.BlockSize, "uri", uri)
	daemon.Ready()

	var serveErr error
	select {
	case sig := <-sigs:
		log.Info("stopping", "signal", sig.String())
	case serveErr = <-served:
		log.Error("server failed", "err", serveErr)
	}
	_, _ = sdnotify.Notify("STOPPING=1")
	return stop(srv, d, log, serveErr)
}

// startService begins every serving mode (NBD socket, FUSE, /dev/nbdX,
// nbdkit): it daemonizes (see daemonize) and, in the process that goes
// on, sets up the log and catches the stop signals from the start, so that
// a stop requested while the disk opens cancels the open (openDisk)
// rather than killing the process half-way. detached: this process is
// done. release stops catching the signals.
func startService(cfg *config.Config, stderr io.Writer, what string) (log *slog.Logger, sigs <-chan os.Signal, release func(), detached bool, err error) {
	if detached, err := daemonize(cfg, stderr, what); detached || err != nil {
		return nil, nil, nil, detached, err
	}
	log = logging.New(logging.Options{Debug: cfg.Debug, Syslog: daemon.IsChild()})
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	return log, ch, func() { signal.Stop(ch) }, false, nil
}

// daemonize puts the program in the background unless -f/-d (or already
// there): the parent returns detached=true once the child serves, after
// telling the user "s3backer: WHAT and daemonizing", as s3backer does.
func daemonize(cfg *config.Config, stderr io.Writer, what string) (detached bool, err error) {
	if cfg.Foreground || daemon.IsChild() {
		return false, nil
	}
	// Read (or ask for) the password here, on the user's terminal.
	pw, err := diskPassword(cfg)
	if err != nil {
		return false, err
	}
	if err := daemon.Start(pw); err != nil {
		return false, err
	}
	if !cfg.Quiet {
		fmt.Fprintf(stderr, "s3backer: %s and daemonizing\n", what)
	}
	return true, nil
}

// newServer is the NBD server of the disk, for sockets and the kernel alike.
func newServer(cfg *config.Config, d *disk.Disk, log *slog.Logger) *nbd.Server {
	return nbd.NewServer(nbdDevice{d.Volume}, nbd.Options{
		Description: fmt.Sprintf("s3backer %s (%d x %s blocks)", cfg.BucketArg, cfg.NumBlocks(), config.FormatSize(cfg.BlockSize)),
		Logger:      log,
		Observer:    &d.Stats().NBD,
	})
}

// stop lets requests in flight finish, then flushes and closes the disk.
func stop(srv *nbd.Server, d *disk.Disk, log *slog.Logger, serveErr error) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(ctx); serr != nil {
		log.Warn("clients did not finish in time", "err", serr)
	}
	return closeDisk(d, log, serveErr)
}

// closeDisk flushes and closes the disk and clears the flag.
func closeDisk(d *disk.Disk, log *slog.Logger, cause error) error {
	return logStop(log, errors.Join(cause, d.Close(context.Background())))
}

// logStop logs how the stop went, the same for every mode, and returns err.
func logStop(log *slog.Logger, err error) error {
	if err != nil {
		log.Error("stopped with errors", "err", err)
		return err
	}
	log.Info("stopped cleanly")
	return nil
}
