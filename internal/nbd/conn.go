package nbd

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one client connection: the handshake state it negotiated, the
// reader that parses its requests, the workers serving them and the
// serialised reply stream.
type conn struct {
	srv *Server
	nc  net.Conn
	log *slog.Logger
	br  *bufio.Reader

	// Negotiated in the handshake; read-only once transmission starts.
	noZeroes   bool   // NBD_FLAG_C_NO_ZEROES
	structured bool   // NBD_OPT_STRUCTURED_REPLY acknowledged
	metaAlloc  bool   // base:allocation selected by NBD_OPT_SET_META_CONTEXT
	size       int64  // export size advertised to this client
	txFlags    uint16 // transmission flags advertised to this client

	// rctx is cancelled when the reader must stop (shutdown, a failed
	// reply write); it unblocks the reader waiting for buffer budget.
	rctx    context.Context
	rcancel context.CancelFunc
	// dctx is passed to the device. It outlives the client on purpose:
	// a request already read completes even if the client vanishes, so no
	// write is left half-applied. Only a forced shutdown cancels it.
	dctx    context.Context
	dcancel context.CancelFunc

	workers *workerPool // request workers, at most MaxInFlight

	wmu      sync.Mutex // serialises replies: each is written whole
	bw       *bufio.Writer
	broken   bool  // a reply write failed; later replies are dropped
	writeErr error // why

	smu      sync.Mutex  // orders stop against deadline changes
	stopping atomic.Bool // no more requests are read
}

// A deadline in the past makes pending and future reads fail at once.
var pastDeadline = time.Unix(1, 0)

func newConn(ctx context.Context, s *Server, nc net.Conn) *conn {
	c := &conn{
		srv: s,
		nc:  nc,
		br:  bufio.NewReaderSize(nc, 32<<10),
		bw:  bufio.NewWriterSize(nc, 32<<10),
	}
	c.log = s.opt.Logger.With("remote", remoteAddr(nc))
	c.rctx, c.rcancel = context.WithCancel(context.Background())
	c.dctx, c.dcancel = context.WithCancel(context.WithoutCancel(ctx))
	c.workers = newWorkerPool(s.opt.MaxInFlight, c.serve)
	return c
}

// stop asks the connection to read no further requests: the blocked read
// fails at once, requests already read run to completion and get their
// replies, and then the connection is closed.
func (c *conn) stop() {
	c.smu.Lock()
	defer c.smu.Unlock()
	if c.stopping.Swap(true) {
		return
	}
	c.rcancel()
	_ = c.nc.SetReadDeadline(pastDeadline)
}

// kill is the forced end: close the socket (failing every pending write)
// and cancel device operations.
func (c *conn) kill() {
	c.stop()
	c.dcancel()
	_ = c.nc.Close()
}

// replyFailure returns the error that broke the reply stream, if any.
func (c *conn) replyFailure() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeErr
}

func (c *conn) isStopping() bool { return c.stopping.Load() }

// setReadDeadline sets a read deadline unless the connection is stopping,
// whose past deadline must not be overwritten.
func (c *conn) setReadDeadline(t time.Time) {
	c.smu.Lock()
	defer c.smu.Unlock()
	if !c.stopping.Load() {
		_ = c.nc.SetReadDeadline(t)
	}
}
