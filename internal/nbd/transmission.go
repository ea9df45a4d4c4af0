package nbd

import (
	"errors"
	"fmt"
	"io"
)

var (
	// errDisconnect ends a session cleanly: the client sent NBD_CMD_DISC.
	errDisconnect = errors.New("client disconnected")
	// errStopped ends a session cleanly: Shutdown or ctx stopped it.
	errStopped = errors.New("connection stopped")
)

// request is one parsed transmission request.
type request struct {
	flags  uint16
	typ    uint16
	cookie uint64
	offset uint64
	length uint32

	payload *[]byte // WRITE data, read by the reader
	weight  int64   // bytes held against the server budget; released by the worker
}

func (r *request) fua() bool { return r.flags&cmdFlagFUA != 0 }

// transmit is the reader: it parses requests one after another and hands
// each to a worker. It returns errDisconnect on NBD_CMD_DISC, or the error
// that stopped it; the caller waits for the workers.
func (c *conn) transmit() error {
	var hdr [requestHeaderLen]byte
	for {
		// Requests already buffered are not started once stopping: the
		// past read deadline only stops reads from the socket itself.
		if c.isStopping() {
			return errStopped
		}
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			return fmt.Errorf("read request header: %w", err)
		}
		if m := be.Uint32(hdr[0:]); m != requestMagic {
			// Without framing there is no way to find the next request.
			return fmt.Errorf("bad request magic %#x", m)
		}
		r := request{
			flags:  be.Uint16(hdr[4:]),
			typ:    be.Uint16(hdr[6:]),
			cookie: be.Uint64(hdr[8:]),
			offset: be.Uint64(hdr[16:]),
			length: be.Uint32(hdr[24:]),
		}
		if r.typ == cmdDisc {
			// Offset, length and flags MUST be zero but there is nothing
			// to answer either way: the client wants out.
			return errDisconnect
		}
		if err := c.dispatch(r); err != nil {
			return err
		}
	}
}

// dispatch validates r, reads its payload and starts its worker. Invalid
// requests are answered here with an error reply. It returns an error only
// when the stream can no longer be read.
func (c *conn) dispatch(r request) error {
	errno := c.validate(&r)

	if r.typ == cmdWrite {
		if errno != 0 {
			// The payload must be consumed to find the next request. The
			// spec lets the server treat a payload beyond both its maximum
			// and 32 MiB as a denial of service; skipping up to 4 GiB to
			// answer a broken client is not worth it.
			if int64(r.length) > c.discardLimit() {
				return fmt.Errorf("write of %d bytes exceeds the maximum payload %d", r.length, c.srv.opt.MaxPayload)
			}
			if _, err := io.CopyN(io.Discard, c.br, int64(r.length)); err != nil {
				return fmt.Errorf("discard write payload: %w", err)
			}
			c.replyError(&r, errno)
			return nil
		}
		if r.length > 0 {
			// The budget is acquired before the buffer exists, so the
			// server never holds more than MaxBufferedBytes of payloads.
			r.weight = int64(classSize(int(r.length)))
			if err := c.srv.sem.Acquire(c.rctx, r.weight); err != nil {
				return fmt.Errorf("wait for buffer space: %w", err)
			}
			r.payload = getBuffer(int(r.length))
			if _, err := io.ReadFull(c.br, *r.payload); err != nil {
				c.release(&r)
				return fmt.Errorf("read write payload: %w", err)
			}
		}
	} else if errno != 0 {
		c.replyError(&r, errno)
		return nil
	} else if w := c.replyWeight(&r); w > 0 {
		r.weight = w
		if err := c.srv.sem.Acquire(c.rctx, w); err != nil {
			return fmt.Errorf("wait for buffer space: %w", err)
		}
	}

	// Blocks while MaxInFlight workers are busy: back-pressure on the client.
	c.workers.submit(r)
	return nil
}

// discardLimit is the largest invalid WRITE payload skipped to answer with an
// error; a larger one drops the connection.
func (c *conn) discardLimit() int64 {
	return int64(max(c.srv.opt.MaxPayload, interopPayload))
}

// replyWeight is the budget a valid non-WRITE request needs for its reply.
func (c *conn) replyWeight(r *request) int64 {
	switch {
	case r.typ == cmdRead && r.length > 0:
		return int64(classSize(int(r.length)))
	case r.typ == cmdBlockStatus:
		if r.flags&cmdFlagReqOne != 0 {
			return int64(classSize(structuredHeaderLen + blockStatusLen(1)))
		}
		return blockStatusWeight
	}
	return 0
}

// validate returns the NBD error a request must be answered with before
// reaching the device, or 0 if it is acceptable.
func (c *conn) validate(r *request) uint32 {
	// FUA is valid on every command (the spec: servers MUST accept it,
	// existing clients set it everywhere); the others are per command.
	allowed := uint16(cmdFlagFUA)
	write := false
	switch r.typ {
	case cmdRead:
		if c.structured {
			allowed |= cmdFlagDF
		}
	case cmdWrite, cmdTrim:
		write = true
	case cmdWriteZeroes:
		write = true
		allowed |= cmdFlagNoHole | cmdFlagFastZero
	case cmdBlockStatus:
		allowed |= cmdFlagReqOne
	case cmdFlush, cmdCache:
	default:
		return errInval
	}
	if r.flags&^allowed != 0 {
		return errInval
	}
	if write && c.txFlags&flagReadOnly != 0 {
		return errPerm
	}
	switch r.typ {
	case cmdFlush:
		// Offset and length are reserved and MUST be zero.
		if r.offset != 0 || r.length != 0 {
			return errInval
		}
		return 0
	case cmdBlockStatus:
		if !c.metaAlloc {
			return errInval
		}
		// At least one nonzero descriptor must come back, and with
		// REQ_ONE it may not exceed the length: length 0 has no answer.
		if r.length == 0 {
			return errInval
		}
	}
	size := uint64(c.size)
	if r.offset > size || uint64(r.length) > size-r.offset {
		// The spec: ENOSPC for writes past the end, EINVAL otherwise.
		if r.typ == cmdWrite || r.typ == cmdWriteZeroes {
			return errNoSpc
		}
		return errInval
	}
	if r.typ == cmdRead && r.length > uint32(c.srv.opt.MaxPayload) {
		return errOverflow // the spec allows rejecting large reads with it
	}
	if r.typ == cmdWrite && r.length > uint32(c.srv.opt.MaxPayload) {
		return errInval
	}
	return 0
}

// release returns r's buffer and budget.
func (c *conn) release(r *request) {
	if r.payload != nil {
		putBuffer(r.payload)
		r.payload = nil
	}
	if r.weight > 0 {
		c.srv.sem.Release(r.weight)
		r.weight = 0
	}
}

// serve runs one valid request against the device and replies. Requests of
// length zero succeed without touching the device (the spec leaves them
// unspecified but asks the server not to disconnect).
func (c *conn) serve(r *request) {
	defer c.release(r)
	dev, ctx, off, n := c.srv.dev, c.dctx, int64(r.offset), int64(r.length)
	var err error
	defer func() { c.srv.opt.Observer.RequestDone(cmdName(r.typ), r.length, err != nil) }()
	switch r.typ {
	case cmdRead:
		if n == 0 {
			c.replyOK(r)
			return
		}
		buf := getBuffer(int(n))
		defer putBuffer(buf)
		if err = dev.ReadAt(ctx, *buf, off); err == nil {
			c.replyRead(r, *buf)
			return
		}
	case cmdWrite:
		if n > 0 {
			err = dev.WriteAt(ctx, *r.payload, off, r.fua())
		}
	case cmdFlush:
		err = dev.Flush(ctx)
	case cmdTrim:
		if n > 0 {
			err = dev.Trim(ctx, off, n, r.fua())
		}
	case cmdWriteZeroes:
		if n > 0 {
			err = dev.Zero(ctx, off, n, ZeroFlags{
				FUA:    r.fua(),
				NoHole: r.flags&cmdFlagNoHole != 0,
				Fast:   r.flags&cmdFlagFastZero != 0,
			})
		}
	case cmdCache:
		if n > 0 {
			err = dev.Cache(ctx, off, n)
		}
	case cmdBlockStatus:
		var exts []Extent
		if exts, err = dev.Extents(ctx, off, n); err == nil {
			c.replyBlockStatus(r, exts)
			return
		}
	}
	if err != nil {
		errno := commandErrno(err, r.typ, r.flags)
		if errno != errNotSup {
			// A fast-zero refusal is routine; everything else is worth
			// an operator's attention.
			c.log.Warn("nbd: device error", "cmd", cmdName(r.typ), "offset", off, "length", n, "err", err)
		}
		c.replyError(r, errno)
		return
	}
	c.replyOK(r)
}
