// Package nbd is a Network Block Device protocol server (fixed newstyle
// negotiation, simple and structured replies, base:allocation block status)
// exporting one Device.
//
// Each connection has one reader goroutine that parses requests and hands
// them to at most Options.MaxInFlight workers; replies go out whole, in
// completion order. Payload buffers are charged against a server-wide budget
// (Options.MaxBufferedBytes) before they are allocated, so memory stays
// bounded whatever the clients send.
package nbd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
)

// Server serves one Device to any number of NBD clients.
type Server struct {
	dev       Device
	opt       Options
	sem       *semaphore.Weighted // server-wide payload byte budget
	prefBlock uint32              // NBD_INFO_BLOCK_SIZE preferred

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	active    int           // running Serve loops and connections
	idle      chan struct{} // closed once closed && active == 0
}

// NewServer returns a server for dev; see Options for the defaults.
func NewServer(dev Device, opt Options) *Server {
	opt = opt.withDefaults()
	return &Server{
		dev:       dev,
		opt:       opt,
		sem:       semaphore.NewWeighted(opt.MaxBufferedBytes),
		prefBlock: preferredBlockSize(dev.BlockSize(), opt.MaxPayload),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		idle:      make(chan struct{}),
	}
}

// enter counts a Serve loop or connection in, unless the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active++
	return true
}

// leave counts one out; the last one out after Shutdown wakes it.
func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.closed && s.active == 0 {
		close(s.idle)
	}
}

// Serve accepts connections on ln and serves each in its own goroutine
// until Shutdown, after which it returns nil. It closes ln on return.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.active++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
		s.leave()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if !retryableAccept(err) {
				return fmt.Errorf("accept: %w", err)
			}
			// Running out of descriptors or memory passes; spinning on
			// it would only make it worse.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.opt.Logger.Warn("nbd: accept failed; retrying", "err", err, "delay", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// Counted before the goroutine starts, so Shutdown cannot miss it
		// (this loop is itself counted, so the count is not yet zero).
		s.mu.Lock()
		s.active++
		s.mu.Unlock()
		go func() {
			defer s.leave()
			if err := s.serveConn(context.Background(), nc, (*conn).handshake); err != nil {
				s.opt.Logger.Debug("nbd: connection ended", "remote", remoteAddr(nc), "err", err)
			}
		}()
	}
}

func remoteAddr(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// retryableAccept reports whether an Accept error is transient.
func retryableAccept(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ServeConn serves one already-connected client (for instance one end of a
// socketpair given to the kernel) and returns when the session ends; nc is
// closed on return. Cancelling ctx ends the session like Shutdown does: no
// new requests are read, requests already read complete and are answered.
// The result is nil for a clean end (NBD_OPT_ABORT, NBD_CMD_DISC, shutdown)
// and otherwise says why the connection was dropped.
//
// Stopping a session interrupts its blocked read with a read deadline; if
// nc does not support deadlines, Shutdown ends it only by closing nc once
// its context expires.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) error {
	if !s.enter() {
		_ = nc.Close()
		return ErrServerClosed
	}
	defer s.leave()
	return s.serveConn(ctx, nc, (*conn).handshake)
}

// serveConn runs a session that starts with negotiate (the handshake, or
// the kernel's direct entry into transmission); the caller has counted it
// in s.active.
func (s *Server) serveConn(ctx context.Context, nc net.Conn, negotiate func(*conn) error) error {
	c := newConn(ctx, s, nc)
	defer c.dcancel()
	defer c.rcancel()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return ErrServerClosed
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.opt.Observer.ConnectionOpened()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.opt.Observer.ConnectionClosed()
	}()

	// Cancelling ctx stops the connection gracefully. The callback's
	// goroutine is waited for, so none outlives this call.
	stopped := make(chan struct{})
	unregister := context.AfterFunc(ctx, func() {
		defer close(stopped)
		c.stop()
	})
	defer func() {
		if !unregister() {
			<-stopped
		}
	}()

	err := c.session(negotiate)
	// Every request already read is finished and answered before the
	// socket closes (NBD_CMD_DISC demands it; for a vanished client it
	// keeps writes from being cut short).
	c.workers.wait()
	if cerr := nc.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = fmt.Errorf("close: %w", cerr)
	}
	return err
}

// session runs negotiate and the transmission phase and classifies how
// they ended.
func (c *conn) session(negotiate func(*conn) error) error {
	err := negotiate(c)
	if err == nil {
		err = c.transmit()
	}
	if werr := c.replyFailure(); werr != nil {
		return fmt.Errorf("write reply: %w", werr)
	}
	switch {
	case errors.Is(err, errAbort), errors.Is(err, errDisconnect), errors.Is(err, errStopped):
		return nil
	case c.isStopping() && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.Canceled)):
		return nil // stopped by Shutdown or ctx: the interrupted read is ours
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("client closed the connection mid-message: %w", err)
	}
	return err
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops the server: listeners close, no connection reads another
// request (clients still negotiating are dropped), requests already read
// complete and their replies are sent, then connections close. It returns
// nil once all of that is done, or ctx.Err() if ctx ends first, in which
// case the remaining connections are closed and their device operations
// cancelled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		if s.active == 0 {
			close(s.idle)
		}
	}
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		c.stop()
	}
	s.mu.Unlock()

	select {
	case <-s.idle:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.kill()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}
