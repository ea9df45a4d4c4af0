package nbd

import (
	"net"
	"time"
)

// directReplyLen is the reply body length from which sendReply writes
// header and body with one writev instead of through the buffer.
const directReplyLen = 64 << 10

// Replies are written whole under c.wmu, in completion order (the protocol
// matches them to requests by cookie). A failed write marks the connection
// broken: the reader is stopped and later replies are dropped, while the
// workers still run to completion.

// blockStatusLen is the payload length of a block status chunk with n
// descriptors: context id, then (length, flags) pairs.
func blockStatusLen(n int) int { return 4 + 8*n }

// blockStatusWeight is the budget of a full BLOCK_STATUS reply buffer.
var blockStatusWeight = int64(classSize(structuredHeaderLen + blockStatusLen(maxExtents)))

// sendReply writes the header and body of one reply and flushes them.
func (c *conn) sendReply(hdr, body []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken {
		return
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.opt.WriteTimeout))
	var err error
	if len(body) >= directReplyLen && c.bw.Buffered() == 0 {
		// A large READ payload goes out in one writev with its header,
		// not copied through the buffer first.
		bufs := net.Buffers{hdr, body}
		_, err = bufs.WriteTo(c.nc)
	} else {
		_, _ = c.bw.Write(hdr)
		_, _ = c.bw.Write(body)
		err = c.bw.Flush()
	}
	if err != nil {
		c.broken = true
		c.writeErr = err
		// Nobody is taking replies: stop reading requests that could
		// never be answered, and free the reader from any wait.
		c.stop()
	}
}

// simpleHeader fills a simple reply header.
func simpleHeader(h *[simpleReplyLen]byte, errno uint32, cookie uint64) {
	be.PutUint32(h[0:], simpleReplyMagic)
	be.PutUint32(h[4:], errno)
	be.PutUint64(h[8:], cookie)
}

// chunkHeader fills a structured reply chunk header into h[:20].
func chunkHeader(h []byte, flags, typ uint16, cookie uint64, length uint32) {
	be.PutUint32(h[0:], structuredReplyMagic)
	be.PutUint16(h[4:], flags)
	be.PutUint16(h[6:], typ)
	be.PutUint64(h[8:], cookie)
	be.PutUint32(h[16:], length)
}

// replyOK answers a successful request that carries no data.
func (c *conn) replyOK(r *request) {
	if c.structured && r.typ == cmdRead {
		// A READ never gets a simple reply once structured replies are
		// on; a zero-length one has no content chunk to send.
		var h [structuredHeaderLen]byte
		chunkHeader(h[:], replyFlagDone, replyTypeNone, r.cookie, 0)
		c.sendReply(h[:], nil)
		return
	}
	var h [simpleReplyLen]byte
	simpleHeader(&h, 0, r.cookie)
	c.sendReply(h[:], nil)
}

// replyError answers a failed request. With structured replies the error
// travels in an NBD_REPLY_TYPE_ERROR chunk with a message (the spec prefers
// it and requires it for READ); otherwise in a simple reply.
func (c *conn) replyError(r *request, errno uint32) {
	if !c.structured {
		var h [simpleReplyLen]byte
		simpleHeader(&h, errno, r.cookie)
		c.sendReply(h[:], nil)
		return
	}
	msg := cmdName(r.typ) + ": " + errnoText(errno)
	var h [structuredHeaderLen + 6]byte
	chunkHeader(h[:], replyFlagDone, replyTypeError, r.cookie, uint32(6+len(msg)))
	be.PutUint32(h[20:], errno)
	be.PutUint16(h[24:], uint16(len(msg)))
	c.sendReply(h[:], []byte(msg))
}

// replyRead sends the data of a successful READ: one content chunk, which
// also satisfies NBD_CMD_FLAG_DF.
func (c *conn) replyRead(r *request, data []byte) {
	if !c.structured {
		var h [simpleReplyLen]byte
		simpleHeader(&h, 0, r.cookie)
		c.sendReply(h[:], data)
		return
	}
	var h [structuredHeaderLen + 8]byte
	chunkHeader(h[:], replyFlagDone, replyTypeOffsetData, r.cookie, uint32(8+len(data)))
	be.PutUint64(h[20:], r.offset)
	c.sendReply(h[:], data)
}

// replyBlockStatus sends the base:allocation extents of [offset,
// offset+length). Descriptors are clipped to the request, runs of equal
// status merged, zero-length runs skipped, and their number capped (at one
// with NBD_CMD_FLAG_REQ_ONE): the client asks again for the remainder.
func (c *conn) replyBlockStatus(r *request, exts []Extent) {
	limit := 1
	if r.flags&cmdFlagReqOne == 0 {
		limit = maxExtents
	}
	buf := getBuffer(structuredHeaderLen + blockStatusLen(limit))
	defer putBuffer(buf)
	b := *buf
	be.PutUint32(b[structuredHeaderLen:], metaBaseAllocationID)

	n := 0
	var lastFlags uint32
	remaining := uint64(r.length) // <= 2^32-1, so every sum below fits 32 bits
	for _, e := range exts {
		if remaining == 0 {
			break
		}
		if e.Length <= 0 {
			continue
		}
		l := min(uint64(e.Length), remaining)
		var flags uint32
		if e.Hole {
			flags |= stateHole
		}
		if e.Zero {
			flags |= stateZero
		}
		if n > 0 && flags == lastFlags {
			d := b[structuredHeaderLen+blockStatusLen(n-1):]
			be.PutUint32(d, be.Uint32(d)+uint32(l))
		} else {
			if n == limit {
				break
			}
			d := b[structuredHeaderLen+blockStatusLen(n):]
			be.PutUint32(d, uint32(l))
			be.PutUint32(d[4:], flags)
			n++
			lastFlags = flags
		}
		remaining -= l
	}
	if n == 0 {
		// The device described nothing usable. Status 0 ("allocated,
		// contents unknown") is always a truthful answer.
		d := b[structuredHeaderLen+blockStatusLen(0):]
		be.PutUint32(d, r.length)
		be.PutUint32(d[4:], 0)
		n = 1
	}
	plen := blockStatusLen(n)
	chunkHeader(b, replyFlagDone, replyTypeBlockStatus, r.cookie, uint32(plen))
	c.sendReply(b[:structuredHeaderLen+plen], nil)
}
