// Package nbddev attaches an in-process NBD server to a Linux kernel NBD
// device (/dev/nbdX), the way nbd-client does, but without a network:
// each connection is a socketpair whose one end is handed to the kernel
// and whose other end is served by the caller (normally nbd.Server's
// ServeKernel). The kernel is configured through the generic-netlink "nbd"
// family, or with the older ioctls where that family does not exist.
//
// The kernel skips the NBD handshake on these sockets: it speaks the
// transmission phase at once, with the size and flags given in Options.
package nbddev

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"
)

// ServeFunc serves one connection of the device until the kernel
// disconnects it (NBD_CMD_DISC, or the socket closes) or ctx is cancelled,
// and closes nc. nbd.Server.ServeKernel is one.
type ServeFunc func(ctx context.Context, nc net.Conn) error

// Method is how the kernel is configured.
type Method int

const (
	// Auto uses netlink where the kernel has the nbd family, else ioctls.
	Auto Method = iota
	// Netlink configures the device with the generic-netlink nbd family
	// (Linux 4.12 and later).
	Netlink
	// Ioctl configures it with NBD_SET_SOCK, NBD_DO_IT and friends.
	Ioctl
)

func (m Method) String() string {
	switch m {
	case Netlink:
		return "netlink"
	case Ioctl:
		return "ioctl"
	}
	return "auto"
}

// Options describe the export to the kernel.
type Options struct {
	// Size of the device in bytes; a multiple of BlockSize.
	Size int64
	// BlockSize is the device's logical block size: a power of two from
	// 512 to 4096 (the kernel's limit). Default 4096.
	BlockSize int
	// Flags are the NBD transmission flags (NBD_FLAG_*) the kernel acts
	// on: read-only, flush, FUA, trim, write zeroes, multi-conn. They
	// must be the flags the server enforces (nbd.Server.KernelFlags).
	Flags uint16
	// Connections is the number of sockets (default 1). The kernel spreads
	// requests over them, one per hardware queue; more than one needs
	// NBD_FLAG_CAN_MULTI_CONN in Flags.
	Connections int
	// Timeout is how long the kernel waits for a reply before it gives up
	// on the connection; 0 means never (the server is in this process:
	// if it dies the socket closes, which the kernel notices at once, so
	// a slow request never needs to be cut short).
	Timeout time.Duration
	// DeadConnTimeout is how long the kernel holds requests once every
	// connection is dead, waiting for a new one, before failing them
	// (netlink only; 0 fails them at once).
	DeadConnTimeout time.Duration
	// Backend names what is attached, shown in /sys/block/nbdX/backend
	// on kernels that have it (netlink only).
	Backend string
	// Method chooses netlink or ioctls; Auto tries netlink first.
	Method Method
	// Logger receives attach and detach events; nil discards them.
	Logger *slog.Logger
}

// Errors callers may test with errors.Is.
var (
	// ErrInUse: the device is already attached to another server.
	ErrInUse = errors.New("device is already in use")
	// ErrNoNetlink: Method Netlink was asked for but the kernel has no
	// nbd netlink family.
	ErrNoNetlink = errors.New("the kernel's nbd module has no netlink interface")
)

// neverTimeout stands for "no timeout" where the kernel would otherwise
// apply its 30 s default: with several connections a timed-out request is
// moved to another connection and its own is declared dead. A day is far
// beyond any request the storage stack lets run (it has its own timeouts
// and retry limits) and fits the kernel's jiffies arithmetic at any HZ.
const neverTimeout = 24 * time.Hour

const defaultBlockSize = 4096

func (o Options) withDefaults() Options {
	if o.BlockSize == 0 {
		o.BlockSize = defaultBlockSize
	}
	if o.Connections <= 0 {
		o.Connections = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// timeoutSeconds is the request timeout to configure, or 0 to leave the
// kernel's default (which, with one connection and no timeout set, only
// warns about slow requests).
func (o Options) timeoutSeconds() uint64 {
	t := o.Timeout
	if t == 0 {
		if o.Connections == 1 {
			return 0
		}
		t = neverTimeout
	}
	return uint64(max((t+time.Second-1)/time.Second, 1))
}
