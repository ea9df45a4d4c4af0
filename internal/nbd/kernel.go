package nbd

import (
	"context"
	"net"
)

// KernelFlags are the transmission flags to give the Linux kernel's NBD
// client (NBD_ATTR_SERVER_FLAGS, NBD_SET_FLAGS) for this server's export:
// those of a client that negotiated no structured replies, which the
// kernel never does. Flags the kernel does not know are ignored by it.
func (s *Server) KernelFlags() uint16 { return s.transmissionFlags(false) }

// ServeKernel serves one connection whose client starts directly in the
// transmission phase, as the kernel does on a socket handed to it with
// NBD_ATTR_SOCKETS or NBD_SET_SOCK: there is no handshake, replies are
// simple, and the export is the device's size with flags (normally
// KernelFlags; they must be the ones the kernel was given, since requests
// are checked against them). Otherwise it behaves as ServeConn: nc is
// closed on return, cancelling ctx ends the session gracefully, and the
// result is nil for a clean end (NBD_CMD_DISC from the kernel on
// disconnect, shutdown).
func (s *Server) ServeKernel(ctx context.Context, nc net.Conn, flags uint16) error {
	if !s.enter() {
		_ = nc.Close()
		return ErrServerClosed
	}
	defer s.leave()
	return s.serveConn(ctx, nc, func(c *conn) error {
		c.enterTransmission(c.exportSize(), flags)
		return nil
	})
}
