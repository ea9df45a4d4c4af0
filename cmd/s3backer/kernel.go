package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"

	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/daemon"
	"github.com/s3backer-go/s3backer/internal/exitcode"
	"github.com/s3backer-go/s3backer/internal/nbddev"
	"github.com/s3backer-go/s3backer/internal/sdnotify"
)

// maxKernelConnections caps the sockets given to the kernel: one per CPU
// lets each CPU's queue submit on its own socket; beyond a few, the storage
// below is the limit, not the sockets.
const maxKernelConnections = 4

// serveKernel attaches the disk to the kernel NBD device (/dev/nbdX) and
// serves it in this process until a signal, or until someone else detaches
// the device; then it detaches, flushes and clears the 'already mounted'
// flag. Like s3backer it daemonizes unless -f/-d, and the command returns
// 0 only once the device is attached.
func serveKernel(cfg *config.Config, device string, stderr io.Writer) error {
	// A stop requested while the disk opens cancels the open, or is acted
	// on by not attaching.
	log, sigs, release, detached, err := startService(cfg, stderr, fmt.Sprintf("connecting %s to %s", cfg.BucketArg, device))
	if detached || err != nil {
		return err
	}
	defer release()
	ctx := context.Background()

	// Fail on a wrong or busy device before the disk is opened (which
	// may survey the bucket and takes the 'already mounted' flag).
	if err := nbddev.Check(ctx, device); err != nil {
		return err
	}
	d, stopped, err := openDisk(cfg, log, sigs)
	if err != nil || stopped != nil {
		return err
	}
	stopObserving, err := observe(cfg, d, stderr)
	if err != nil {
		_ = d.Close(ctx)
		return err
	}
	defer stopObserving()
	srv := newServer(cfg, d, log)
	select {
	case sig := <-sigs:
		log.Info("stopping before attaching", "signal", sig.String())
		return stop(srv, d, log, nil)
	default:
	}

	flags := srv.KernelFlags()
	kbs, err := kernelBlockSize(d.Volume.Size())
	if err != nil {
		return stop(srv, d, log, err)
	}
	dev, err := nbddev.Attach(ctx, device, func(ctx context.Context, nc net.Conn) error {
		return srv.ServeKernel(ctx, nc, flags)
	}, nbddev.Options{
		Size:        d.Volume.Size(),
		BlockSize:   kbs,
		Flags:       flags,
		Connections: min(runtime.NumCPU(), maxKernelConnections),
		Backend:     "s3backer " + cfg.BucketArg,
		Logger:      log,
	})
	if err != nil {
		return stop(srv, d, log, err)
	}
	log.Info("connected", "bucket", cfg.BucketArg, "device", device, "size", cfg.Size,
		"blockSize", cfg.BlockSize, "method", dev.Method().String())
	daemon.Ready()

	var deverr error
	select {
	case sig := <-sigs:
		log.Info("stopping", "signal", sig.String())
	case <-dev.Done():
		log.Warn("the device was detached; stopping", "reason", dev.Err())
	}
	_, _ = sdnotify.Notify("STOPPING=1")
	// The kernel is detached first, so it never sends to a server that has
	// gone; stop then flushes and clears the flag.
	dctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	if err := dev.Detach(dctx); err != nil {
		deverr = fmt.Errorf("detach %s: %w", device, err)
	}
	return stop(srv, d, log, deverr)
}

// kernelBlockSize is the logical block size given to the kernel: 4096 like
// s3backer's nbd-client, or the largest smaller power of two (at least 512,
// the kernel's minimum) that divides a disk whose size 4096 does not.
func kernelBlockSize(size int64) (int, error) {
	for bs := 4096; bs >= 512; bs /= 2 {
		if size%int64(bs) == 0 {
			return bs, nil
		}
	}
	return 0, exitcode.UsageError{Err: errors.New("a kernel NBD device needs a disk size that is a multiple of 512")}
}
