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
	"github.com/s3backer-go/s3backer/internal/logging"
	"github.com/s3backer-go/s3backer/internal/nbd"
)

// shutdownTimeout bounds how long a stop waits for clients' requests in
// flight before closing their connections anyway (the flush still runs).
const shutdownTimeout = 60 * time.Second

// serveNBD serves the disk at cfg.Target until a signal, daemonizing first
// unless -f/-d.
func serveNBD(cfg *config.Config, stderr io.Writer) error {
	target, err := parseNBDTarget(cfg.Target)
	if err != nil {
		return usageError{err}
	}
	if !cfg.Foreground && !daemon.IsChild() {
		if err := daemon.Start(); err != nil {
			return err
		}
		if !cfg.Quiet {
			fmt.Fprintf(stderr, "s3backer: serving %s at %s and daemonizing\n", cfg.BucketArg, cfg.Target)
		}
		return nil
	}
	log := logging.New(logging.Options{Debug: cfg.Debug, Syslog: daemon.IsChild()})

	ctx := context.Background()
	d, err := openDisk(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := target.listen()
	if err != nil {
		_ = d.close(ctx)
		return err
	}
	srv := nbd.NewServer(nbdDevice{d.vol}, nbd.Options{
		ExportName:  "",
		Description: fmt.Sprintf("s3backer %s (%d x %s blocks)", cfg.BucketArg, cfg.NumBlocks(), config.FormatSize(cfg.BlockSize)),
		Logger:      log,
	})

	// Signals are caught before we report ready, so a stop request that
	// arrives right after start-up is never lost.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
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
	return stop(srv, d, log, serveErr)
}

// stop lets requests in flight finish, then flushes and closes the disk.
func stop(srv *nbd.Server, d *disk, log *slog.Logger, serveErr error) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(ctx); serr != nil {
		log.Warn("clients did not finish in time", "err", serr)
	}
	err := errors.Join(serveErr, d.close(context.Background()))
	if err != nil {
		log.Error("stopped with errors", "err", err)
		return err
	}
	log.Info("stopped cleanly")
	return nil
}
