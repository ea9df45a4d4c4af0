package nbd

import (
	"context"
	"errors"
	"syscall"
)

// ErrServerClosed is returned by Serve and ServeConn when they are called
// after Shutdown.
var ErrServerClosed = errors.New("nbd: server closed")

// errnoOf maps a Device error to the NBD error value of the same meaning.
// The protocol defines its own small set of values (not the host's errno), so
// anything without an exact counterpart becomes NBD_EIO.
func errnoOf(err error) uint32 {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		switch {
		case e == syscall.EPERM, e == syscall.EROFS:
			return errPerm
		case e == syscall.EIO:
			return errIO
		case e == syscall.ENOMEM:
			return errNoMem
		case e == syscall.EINVAL:
			return errInval
		// The spec asks for EDQUOT and EFBIG to be reported as ENOSPC.
		case e == syscall.ENOSPC, e == syscall.EDQUOT, e == syscall.EFBIG:
			return errNoSpc
		case e == syscall.EOVERFLOW:
			return errOverflow
		case e == syscall.ENOTSUP, e == syscall.EOPNOTSUPP:
			return errNotSup
		case e == syscall.ESHUTDOWN:
			return errShutdown
		}
		return errIO
	}
	// The device context is only cancelled when a shutdown gives up
	// waiting, so a cancelled operation means the server is going away.
	if errors.Is(err, context.Canceled) {
		return errShutdown
	}
	return errIO
}

// commandErrno is errnoOf adjusted to what the spec allows a command to
// return: NBD_ENOTSUP is reserved for NBD_CMD_WRITE_ZEROES with
// NBD_CMD_FLAG_FAST_ZERO (a server advertising fast zero MUST NOT fail a
// plain write-zeroes with it), so elsewhere it becomes NBD_EINVAL.
func commandErrno(err error, cmd, flags uint16) uint32 {
	e := errnoOf(err)
	if e == errNotSup && !(cmd == cmdWriteZeroes && flags&cmdFlagFastZero != 0) {
		return errInval
	}
	return e
}

// errnoText is the human-readable message sent with structured errors. It
// deliberately names only the error class: device errors can carry internal
// detail (bucket names, URLs) that the client has no business seeing.
func errnoText(e uint32) string {
	switch e {
	case errPerm:
		return "operation not permitted"
	case errIO:
		return "input/output error"
	case errNoMem:
		return "cannot allocate memory"
	case errInval:
		return "invalid argument"
	case errNoSpc:
		return "no space left on device"
	case errOverflow:
		return "value too large"
	case errNotSup:
		return "operation not supported"
	case errShutdown:
		return "server is shutting down"
	}
	return "error"
}
