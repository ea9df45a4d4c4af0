package nbddev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel's NBD ioctls (uapi linux/nbd.h: _IO(0xab, n)).
const (
	ioctlSetSock       = 0xab00
	ioctlSetBlkSize    = 0xab01
	ioctlDoIt          = 0xab03
	ioctlClearSock     = 0xab04
	ioctlSetSizeBlocks = 0xab07
	ioctlDisconnect    = 0xab08
	ioctlSetTimeout    = 0xab09
	ioctlSetFlags      = 0xab0a
)

// ioControl is a device configured with ioctls. The kernel keeps it
// attached only while NBD_DO_IT runs, on a thread of its own.
type ioControl struct {
	fd   int           // the device, open for the whole attachment; set before run reports success
	done chan struct{} // closed when run (NBD_DO_IT) returns
	err  error         // NBD_DO_IT's result, once done
}

func ioctl(fd int, req uint, arg uintptr, what string) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg); e != 0 {
		if e == unix.EBUSY {
			return fmt.Errorf("%s: %w", what, ErrInUse)
		}
		return fmt.Errorf("%s: %w", what, e)
	}
	return nil
}

// attachIoctl configures the device and starts NBD_DO_IT; the device is
// usable once the kernel shows it attached (see started).
func attachIoctl(n node, fds []int, opt Options) (*ioControl, error) {
	c := &ioControl{fd: -1, done: make(chan struct{})}
	setup := make(chan error, 1)
	go c.run(n, fds, opt, setup)
	if err := <-setup; err != nil {
		<-c.done
		return nil, err
	}
	return c, nil
}

// run configures the device and runs NBD_DO_IT, which returns only once
// the device is detached, all on one thread: the kernel refuses
// NBD_SET_SOCK from a thread other than the one that began the set-up, and
// ends NBD_DO_IT early (tearing the device down) when its thread is
// interrupted by a signal, which Go delivers to any thread. So the thread
// is locked, blocks every signal, and is never handed back to the
// scheduler: it exits with this goroutine.
func (c *ioControl) run(n node, fds []int, opt Options, setup chan<- error) {
	defer close(c.done)
	runtime.LockOSThread()
	var all unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, nil); err != nil {
		setup <- fmt.Errorf("block signals for NBD_DO_IT: %w", err)
		return
	}
	fd, err := unix.Open(n.path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		setup <- fmt.Errorf("open %s: %w", n.path, err)
		return
	}
	if err := configureIoctl(fd, fds, opt); err != nil {
		_ = ioctl(fd, ioctlClearSock, 0, "NBD_CLEAR_SOCK")
		unix.Close(fd)
		setup <- err
		return
	}
	c.fd = fd
	setup <- nil
	c.err = ioctl(fd, ioctlDoIt, 0, "NBD_DO_IT")
}

func configureIoctl(fd int, fds []int, opt Options) error {
	if err := ioctl(fd, ioctlSetBlkSize, uintptr(opt.BlockSize), "NBD_SET_BLKSIZE"); err != nil {
		return err
	}
	if err := ioctl(fd, ioctlSetSizeBlocks, uintptr(opt.Size/int64(opt.BlockSize)), "NBD_SET_SIZE_BLOCKS"); err != nil {
		return err
	}
	if t := opt.timeoutSeconds(); t > 0 {
		if err := ioctl(fd, ioctlSetTimeout, uintptr(t), "NBD_SET_TIMEOUT"); err != nil {
			return err
		}
	}
	if err := ioctl(fd, ioctlSetFlags, uintptr(opt.Flags), "NBD_SET_FLAGS"); err != nil {
		return err
	}
	for _, s := range fds {
		if err := ioctl(fd, ioctlSetSock, uintptr(s), "NBD_SET_SOCK"); err != nil {
			return err
		}
	}
	return nil
}

// started waits until the kernel shows the device attached, or NBD_DO_IT
// fails. Attached means the pid file and the capacity: the kernel creates
// the pid file before it sets the size, so a caller that saw only the pid
// could still find a 0-sector disk.
func (c *ioControl) started(ctx context.Context, n node) error {
	attached := func() bool {
		pid, err := n.attachedPID()
		if err != nil || pid == 0 {
			return false
		}
		b, err := os.ReadFile(n.sysfs("size"))
		return err == nil && strings.TrimSpace(string(b)) != "0"
	}
	ctx, cancel := context.WithTimeout(ctx, netlinkTimeout)
	defer cancel()
	err := pollUntil(ctx, netlinkTimeout, func() bool {
		select {
		case <-c.done:
			return true
		default:
			return attached()
		}
	})
	select {
	case <-c.done:
		if c.err == nil {
			return errors.New("NBD_DO_IT returned at once")
		}
		return c.err
	default:
	}
	if err != nil {
		return fmt.Errorf("the kernel did not start %s: %w", n.path, err)
	}
	return nil
}

// waitDone waits up to limit for NBD_DO_IT to return; it reports whether
// it has.
func (c *ioControl) waitDone(ctx context.Context, limit time.Duration) bool {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}

// disconnect sends NBD_CMD_DISC on every socket; NBD_DO_IT returns once
// the server has closed them.
func (c *ioControl) disconnect() error {
	return ioctl(c.fd, ioctlDisconnect, 0, "NBD_DISCONNECT")
}

// release waits for NBD_DO_IT, clears the sockets and closes the device.
func (c *ioControl) release(ctx context.Context) error {
	var err error
	select {
	case <-c.done:
	case <-ctx.Done():
		err = fmt.Errorf("NBD_DO_IT did not return: %w", ctx.Err())
	}
	// Also what ends a stuck NBD_DO_IT: the sockets are shut down.
	err = errors.Join(err, ioctl(c.fd, ioctlClearSock, 0, "NBD_CLEAR_SOCK"))
	if err == nil {
		<-c.done
	}
	return errors.Join(err, unix.Close(c.fd))
}
