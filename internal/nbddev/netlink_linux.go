package nbddev

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The kernel's generic-netlink nbd family (uapi linux/nbd-netlink.h).
const (
	familyName = "nbd"

	cmdConnect    = 1
	cmdDisconnect = 2

	attrIndex           = 1
	attrSizeBytes       = 2
	attrBlockSizeBytes  = 3
	attrTimeout         = 4
	attrServerFlags     = 5
	attrSockets         = 7
	attrDeadConnTimeout = 8
	attrBackend         = 10

	sockItem = 1
	sockFD   = 1
)

// netlinkTimeout bounds one request to the kernel. Connect and disconnect
// are quick; a disconnect waits for the kernel's receive threads, which
// end as soon as the sockets are shut down.
const netlinkTimeout = 30 * time.Second

// nlControl talks to the kernel's nbd family. Each command uses a
// connection of its own: the kernel answers CONNECT with a reply and an
// acknowledgement, and whatever one command leaves unread must not be
// taken for the answer to the next.
type nlControl struct {
	fam genetlink.Family
}

// dialNetlink finds the nbd family; ErrNoNetlink if the kernel has none.
func dialNetlink() (*nlControl, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoNetlink, err)
	}
	defer c.Close()
	fam, err := c.GetFamily(familyName)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, ErrNoNetlink
		}
		return nil, fmt.Errorf("%w: look up the nbd family: %w", ErrNoNetlink, err)
	}
	return &nlControl{fam: fam}, nil
}

// execute sends one command and waits for the kernel's answer: its reply
// if it sends one, else its acknowledgement.
func (n *nlControl) execute(ctx context.Context, cmd uint8, ae *netlink.AttributeEncoder) error {
	data, err := ae.Encode()
	if err != nil {
		return err
	}
	c, err := genetlink.Dial(nil)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(netlinkTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	_, err = c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: n.fam.Version},
		Data:   data,
	}, n.fam.ID, netlink.Request|netlink.Acknowledge)
	return err
}

// connect attaches the sockets fds to device index.
func (n *nlControl) connect(ctx context.Context, index int, fds []int, opt Options) error {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(attrIndex, uint32(index))
	ae.Uint64(attrSizeBytes, uint64(opt.Size))
	ae.Uint64(attrBlockSizeBytes, uint64(opt.BlockSize))
	ae.Uint64(attrServerFlags, uint64(opt.Flags))
	if t := opt.timeoutSeconds(); t > 0 {
		ae.Uint64(attrTimeout, t)
	}
	if opt.DeadConnTimeout > 0 {
		ae.Uint64(attrDeadConnTimeout, uint64(max(opt.DeadConnTimeout/time.Second, 1)))
	}
	if opt.Backend != "" {
		// Older kernels ignore attributes they do not know.
		ae.String(attrBackend, opt.Backend)
	}
	ae.Nested(attrSockets, func(nae *netlink.AttributeEncoder) error {
		for _, fd := range fds {
			nae.Nested(sockItem, func(sae *netlink.AttributeEncoder) error {
				sae.Uint32(sockFD, uint32(fd))
				return nil
			})
		}
		return nil
	})
	return n.execute(ctx, cmdConnect, ae)
}

// disconnect asks the kernel to detach device index: it sends NBD_CMD_DISC
// on every socket, shuts them down and fails requests still queued.
func (n *nlControl) disconnect(ctx context.Context, index int) error {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(attrIndex, uint32(index))
	return n.execute(ctx, cmdDisconnect, ae)
}
