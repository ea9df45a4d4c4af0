package nbddev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// releaseWait bounds the wait, after a detach, for the kernel to let go of
// the device. It lets go only when nothing holds it open: a still-mounted
// file system keeps it (failing every I/O) until unmounted.
const releaseWait = 10 * time.Second

// ioctlSettle is how long NBD_DO_IT gets to return after the attachment
// ended by itself (its connections end a moment before it does).
const ioctlSettle = time.Second

// Device is an attached kernel NBD device.
type Device struct {
	node   node
	method Method
	log    *slog.Logger

	nl     *nlControl // netlink: the nbd family
	anchor *anchor    // netlink: the thread the kernel records as owner
	io     *ioControl // ioctl: the open device running NBD_DO_IT

	cancel    context.CancelFunc // ends the sessions by force
	sessions  sync.WaitGroup
	detaching atomic.Bool

	doneOnce sync.Once
	done     chan struct{}
	doneErr  error

	detachOnce sync.Once
	detachErr  error
}

// Path is the device as given to Attach.
func (d *Device) Path() string { return d.node.path }

// Method is how the device was configured: Netlink or Ioctl.
func (d *Device) Method() Method { return d.method }

// Done is closed when the attachment ends without Detach: someone else
// detached the device (nbd-client -d), or a connection ended. The caller
// should then call Detach to finish the clean-up.
func (d *Device) Done() <-chan struct{} { return d.done }

// Err says why Done was closed.
func (d *Device) Err() error {
	select {
	case <-d.done:
		return d.doneErr
	default:
		return nil
	}
}

func (d *Device) end(err error) {
	d.doneOnce.Do(func() {
		d.doneErr = err
		close(d.done)
	})
}

// Attach attaches the device at path (/dev/nbdN) to serve, with one
// socketpair per connection, and returns once the kernel accepts I/O on
// it. It loads the nbd module if the device does not exist, and refuses a
// device attached to another live process (ErrInUse); a device left
// attached by a process that died is taken over (netlink only).
func Attach(ctx context.Context, path string, serve ServeFunc, opt Options) (*Device, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("attach %s: %w", path, err)
	}
	n, err := resolve(ctx, path)
	if err != nil {
		return nil, err
	}
	d := &Device{node: n, log: opt.Logger.With("device", path), done: make(chan struct{})}

	if opt.Method != Ioctl {
		d.nl, err = dialNetlink()
		switch {
		case err == nil:
			d.method = Netlink
		case opt.Method == Auto && errors.Is(err, ErrNoNetlink):
			d.log.Debug("nbd: no netlink interface; using ioctls", "err", err)
		default:
			return nil, fmt.Errorf("attach %s: %w", path, err)
		}
	}
	if d.nl == nil {
		d.method = Ioctl
	}
	if err := d.claim(ctx); err != nil {
		return nil, err
	}

	pairs, err := newPairs(opt.Connections)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", path, err)
	}
	// Sessions run before the kernel is told about the sockets: it reads
	// the partition table as soon as the device starts.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	for i, p := range pairs {
		d.sessions.Add(1)
		go d.session(sctx, i, p, serve)
	}
	err = d.start(ctx, kernelFDs(pairs), opt)
	if err != nil {
		d.detaching.Store(true) // the sessions' ends are expected now
	}
	closeKernelEnds(pairs)
	if err != nil {
		// The sessions end when the kernel drops its ends; cancel covers
		// a kernel that took them and let go otherwise.
		cancel()
		d.sessions.Wait()
		return nil, fmt.Errorf("attach %s: %w", path, err)
	}
	d.log.Info("nbd: device attached", "method", d.method.String(), "size", opt.Size,
		"blockSize", opt.BlockSize, "connections", opt.Connections, "flags", fmt.Sprintf("%#x", opt.Flags))
	return d, nil
}

// Check resolves path as Attach does (loading the nbd module if the device
// does not exist) and reports whether the device could be attached: it is
// an NBD device and no live process has it attached. Attach checks again;
// this lets a caller fail before doing anything costly.
func Check(ctx context.Context, path string) error {
	n, err := resolve(ctx, path)
	if err != nil {
		return err
	}
	if err := checkFree(n); err != nil && !errors.As(err, new(staleError)) {
		return err
	}
	return nil
}

// validate checks what the kernel would refuse less clearly.
func (o Options) validate() error {
	bs := o.BlockSize
	switch {
	case bs < 512 || bs > 4096 || bs&(bs-1) != 0:
		return fmt.Errorf("block size %d: want a power of two from 512 to 4096", bs)
	case o.Size <= 0 || o.Size%int64(bs) != 0:
		return fmt.Errorf("size %d: want a positive multiple of the block size %d", o.Size, bs)
	case o.Connections > 1 && o.Flags&flagCanMultiConn == 0:
		return fmt.Errorf("%d connections need a server that allows several (NBD_FLAG_CAN_MULTI_CONN)", o.Connections)
	case o.Flags&flagHasFlags == 0:
		return errors.New("flags lack NBD_FLAG_HAS_FLAGS")
	}
	return nil
}

// claim makes sure the device is free, taking over one whose server died.
func (d *Device) claim(ctx context.Context) error {
	err := checkFree(d.node)
	var stale staleError
	if !errors.As(err, &stale) {
		return err
	}
	if d.nl == nil {
		return fmt.Errorf("%s: %w (%v; detach it with nbd-client -d %s)", d.node.path, ErrInUse, stale, d.node.path)
	}
	d.log.Warn("nbd: taking over a device left attached", "reason", stale.Error())
	if err := d.nl.disconnect(ctx, d.node.index); err != nil {
		return fmt.Errorf("%s: detach the stale attachment: %w", d.node.path, err)
	}
	if err := d.waitReleased(ctx); err != nil {
		return fmt.Errorf("%s: detach the stale attachment: %w", d.node.path, err)
	}
	return nil
}

// start hands the sockets to the kernel.
func (d *Device) start(ctx context.Context, fds []int, opt Options) error {
	if d.nl != nil {
		a := newAnchor()
		var err error
		a.do(func() { err = d.nl.connect(ctx, d.node.index, fds, opt) })
		if err != nil {
			a.close()
			return kernelError("NBD_CMD_CONNECT", err)
		}
		d.anchor = a
		return nil
	}
	io, err := attachIoctl(d.node, fds, opt)
	if err != nil {
		return kernelError("configure", err)
	}
	if err := io.started(ctx, d.node); err != nil {
		_ = io.disconnect()
		d.cancel()
		return errors.Join(err, io.release(ctx))
	}
	d.io = io
	go func() {
		// NBD_DO_IT returning means the device was detached.
		<-io.done
		if !d.detaching.Load() {
			d.end(fmt.Errorf("the kernel detached the device: %v", io.err))
		}
	}()
	return nil
}

// kernelError words the kernel's refusals for an operator.
func kernelError(op string, err error) error {
	switch {
	case errors.Is(err, ErrInUse), errors.Is(err, unix.EBUSY):
		return fmt.Errorf("%s: %w", op, ErrInUse)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%s: %w (attaching an NBD device needs root: CAP_SYS_ADMIN)", op, err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%s: %w (the kernel refused the configuration; see dmesg)", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// session serves one connection until it ends.
func (d *Device) session(ctx context.Context, i int, p pair, serve ServeFunc) {
	defer d.sessions.Done()
	err := serve(ctx, p.server)
	if d.detaching.Load() {
		if err != nil {
			d.log.Debug("nbd: connection ended", "conn", i, "err", err)
		}
		return
	}
	if err == nil {
		err = errors.New("the kernel disconnected the device")
	}
	d.log.Warn("nbd: connection ended", "conn", i, "err", err)
	d.end(fmt.Errorf("connection %d: %w", i, err))
}

// Detach disconnects the device cleanly: the kernel sends NBD_CMD_DISC on
// every connection, the server finishes the requests it has read and
// closes them, then the kernel releases the device. If ctx ends first the
// sessions are cut short. Detach is idempotent; its result is the first
// call's.
func (d *Device) Detach(ctx context.Context) error {
	d.detachOnce.Do(func() { d.detachErr = d.detach(ctx) })
	return d.detachErr
}

func (d *Device) detach(ctx context.Context) error {
	d.detaching.Store(true)
	alreadyGone := d.Err() != nil
	var err error
	switch {
	case d.nl != nil:
		err = d.nl.disconnect(ctx, d.node.index)
	case alreadyGone && d.io.waitDone(ctx, ioctlSettle):
		// Detached by someone else: nothing to disconnect.
	default:
		err = d.io.disconnect()
	}
	if err != nil && !alreadyGone {
		err = fmt.Errorf("disconnect %s: %w", d.node.path, err)
	} else {
		err = nil // detached already by someone else: nothing to undo
	}
	if !waitGroupCtx(ctx, &d.sessions) {
		d.log.Warn("nbd: connections did not end in time; closing them")
		d.cancel()
		d.sessions.Wait()
	}
	d.cancel()
	if d.io != nil {
		err = errors.Join(err, d.io.release(ctx))
	}
	d.releaseAnchor()
	if rerr := d.waitReleased(ctx); rerr != nil {
		d.log.Warn("nbd: the device is detached but still held open (a mounted file system?): its I/O fails until it is closed", "err", rerr)
	} else {
		d.log.Info("nbd: device detached")
	}
	d.end(errors.New("detached"))
	return err
}

// waitReleased waits for the kernel to drop the device's configuration.
func (d *Device) waitReleased(ctx context.Context) error {
	return pollUntil(ctx, releaseWait, func() bool {
		pid, err := d.node.attachedPID()
		return err == nil && pid == 0
	})
}

// releaseAnchor lets the attaching thread go (netlink).
func (d *Device) releaseAnchor() {
	if d.anchor != nil {
		d.anchor.close()
		d.anchor = nil
	}
}

// waitGroupCtx waits for wg or ctx; false if ctx ended first.
func waitGroupCtx(ctx context.Context, wg *sync.WaitGroup) bool {
	ch := make(chan struct{})
	go func() {
		wg.Wait()
		close(ch)
	}()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}
