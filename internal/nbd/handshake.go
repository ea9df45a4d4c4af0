package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

var be = binary.BigEndian

// errAbort ends a session cleanly: the client sent NBD_OPT_ABORT.
var errAbort = errors.New("client aborted the handshake")

// handshake runs the fixed newstyle negotiation. It returns nil when the
// client has entered the transmission phase (NBD_OPT_EXPORT_NAME or a
// successful NBD_OPT_GO), errAbort on NBD_OPT_ABORT, or the reason the
// connection must be dropped.
func (c *conn) handshake() error {
	// One deadline for the whole negotiation: a client that dribbles
	// options cannot hold a connection open forever.
	deadline := time.Now().Add(c.srv.opt.HandshakeTimeout)
	c.setReadDeadline(deadline)
	_ = c.nc.SetWriteDeadline(deadline)

	var greet [18]byte
	be.PutUint64(greet[0:], nbdMagic)
	be.PutUint64(greet[8:], optMagic)
	be.PutUint16(greet[16:], flagFixedNewstyle|flagNoZeroes)
	if err := c.writeFlush(greet[:]); err != nil {
		return fmt.Errorf("write greeting: %w", err)
	}

	var cf [4]byte
	if _, err := io.ReadFull(c.br, cf[:]); err != nil {
		return fmt.Errorf("read client flags: %w", err)
	}
	// The spec: the server MUST drop the connection on unknown client
	// flags. A client without NBD_FLAG_C_FIXED_NEWSTYLE is still served
	// with fixed newstyle replies (permitted; nothing uses plain newstyle).
	flags := be.Uint32(cf[:])
	if flags&^clientFlagsKnown != 0 {
		return fmt.Errorf("unknown client flags %#x", flags)
	}
	c.noZeroes = flags&clientFlagNoZeroes != 0

	var hdr [optionHeaderLen]byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			return fmt.Errorf("read option header: %w", err)
		}
		if m := be.Uint64(hdr[0:]); m != optMagic {
			return fmt.Errorf("bad option magic %#x", m)
		}
		opt := be.Uint32(hdr[8:])
		length := be.Uint32(hdr[12:])

		if length > maxOptionLen {
			if opt == optExportName {
				// It has no error reply: dropping is the only answer.
				return fmt.Errorf("export name of %d bytes is too long", length)
			}
			if length > maxOptionDiscard {
				return fmt.Errorf("option %d with %d bytes of data: dropping a likely denial of service", opt, length)
			}
			if _, err := io.CopyN(io.Discard, c.br, int64(length)); err != nil {
				return fmt.Errorf("discard oversized option data: %w", err)
			}
			if err := c.optReply(opt, repErrTooBig, []byte("option data too large")); err != nil {
				return err
			}
			continue
		}
		// Grown as bytes arrive: a client announcing 64 KiB and sending
		// nothing costs nothing.
		data, err := io.ReadAll(io.LimitReader(c.br, int64(length)))
		if err == nil && len(data) < int(length) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("read option %d data: %w", opt, err)
		}

		if c.isStopping() {
			// The spec: error further options with NBD_REP_ERR_SHUTDOWN
			// (ABORT still gets its ACK). The next read fails anyway.
			switch opt {
			case optAbort:
				_ = c.optReply(opt, repAck, nil)
				return errAbort
			case optExportName:
				return errStopped // it has no error reply
			}
			if err := c.optReply(opt, repErrShutdown, []byte("server is shutting down")); err != nil {
				return err
			}
			continue
		}

		done, err := c.option(opt, data)
		if err != nil || done {
			return err
		}
	}
}

// option answers one option. done reports that negotiation is over: the
// transmission phase was entered (err nil) or the client aborted.
func (c *conn) option(opt uint32, data []byte) (done bool, err error) {
	switch opt {
	case optExportName:
		return true, c.exportNameReply()

	case optAbort:
		// Data is ignored as the spec asks. The client may already have
		// closed the connection, so a failed ACK is not an error.
		_ = c.optReply(opt, repAck, nil)
		return true, errAbort

	case optList:
		if len(data) != 0 {
			return false, c.optReply(opt, repErrInvalid, []byte("NBD_OPT_LIST takes no data"))
		}
		name := c.srv.opt.ExportName
		rep := make([]byte, 4, 4+len(name)+len(c.srv.opt.Description))
		be.PutUint32(rep, uint32(len(name)))
		rep = append(rep, name...)
		rep = append(rep, c.srv.opt.Description...)
		if err := c.optReply(opt, repServer, rep); err != nil {
			return false, err
		}
		return false, c.optReply(opt, repAck, nil)

	case optStartTLS:
		if len(data) != 0 {
			return false, c.optReply(opt, repErrInvalid, []byte("NBD_OPT_STARTTLS takes no data"))
		}
		return false, c.optReply(opt, repErrPolicy, []byte("TLS is not supported by this server"))

	case optInfo, optGo:
		return c.infoOrGo(opt, data)

	case optStructuredReply:
		if len(data) != 0 {
			return false, c.optReply(opt, repErrInvalid, []byte("NBD_OPT_STRUCTURED_REPLY takes no data"))
		}
		c.structured = true
		return false, c.optReply(opt, repAck, nil)

	case optListMetaContext, optSetMetaContext:
		return false, c.metaContext(opt, data)
	}
	// Includes NBD_OPT_EXTENDED_HEADERS, which this server does not speak.
	return false, c.optReply(opt, repErrUnsup, []byte("option not supported"))
}

// transmissionFlags are the flags advertised for the export to this client.
func (c *conn) transmissionFlags() uint16 { return c.srv.transmissionFlags(c.structured) }

// transmissionFlags are the export's flags for a client that did or did not
// negotiate structured replies.
func (s *Server) transmissionFlags(structured bool) uint16 {
	f := uint16(flagHasFlags | flagSendFlush | flagSendCache | flagCanMultiConn)
	if s.dev.ReadOnly() {
		// Write-type features are not advertised; if used anyway they
		// get NBD_EPERM.
		f |= flagReadOnly
	} else {
		f |= flagSendFUA | flagSendTrim | flagSendWriteZeroes | flagSendFastZero
	}
	if structured {
		// READ always answers with one data chunk, so DF holds trivially;
		// the spec requires the flag clear without structured replies.
		f |= flagSendDF
	}
	return f
}

// enterTransmission fixes the export's parameters for this connection and
// lifts the handshake deadlines.
func (c *conn) enterTransmission(size int64, flags uint16) {
	c.size = size
	c.txFlags = flags
	c.setReadDeadline(time.Time{})
	_ = c.nc.SetWriteDeadline(time.Time{})
}

func (c *conn) exportSize() int64 { return max(c.srv.dev.Size(), 0) }

// exportNameReply ends negotiation the old way: size, flags and (unless the
// client opted out) 124 zero bytes, with no option reply framing.
func (c *conn) exportNameReply() error {
	size, flags := c.exportSize(), c.transmissionFlags()
	var rep [10 + 124]byte
	be.PutUint64(rep[0:], uint64(size))
	be.PutUint16(rep[8:], flags)
	n := len(rep)
	if c.noZeroes {
		n = 10
	}
	if err := c.writeFlush(rep[:n]); err != nil {
		return fmt.Errorf("write export name reply: %w", err)
	}
	c.enterTransmission(size, flags)
	return nil
}

// infoOrGo answers NBD_OPT_INFO and NBD_OPT_GO (same request and replies;
// GO then enters transmission).
func (c *conn) infoOrGo(opt uint32, data []byte) (bool, error) {
	// Data: name length (32), name, count (16), count x info type (16).
	if len(data) < 6 {
		return false, c.optReply(opt, repErrInvalid, []byte("truncated request"))
	}
	nameLen := be.Uint32(data)
	if uint64(nameLen) > uint64(len(data)-6) {
		return false, c.optReply(opt, repErrInvalid, []byte("export name length exceeds option length"))
	}
	rest := data[4+nameLen:]
	count := int(be.Uint16(rest))
	reqs := rest[2:]
	if len(reqs) != 2*count {
		return false, c.optReply(opt, repErrInvalid, []byte("information request count does not match option length"))
	}
	// Any name is accepted: there is one export, known by every name.
	var wantName, wantDesc bool
	for i := 0; i+1 < len(reqs); i += 2 {
		switch be.Uint16(reqs[i:]) {
		case infoName:
			wantName = true
		case infoDescription:
			wantDesc = true
		}
	}

	size, flags := c.exportSize(), c.transmissionFlags()
	var exp [12]byte
	be.PutUint16(exp[0:], infoExport)
	be.PutUint64(exp[2:], uint64(size))
	be.PutUint16(exp[10:], flags)
	if err := c.optReply(opt, repInfo, exp[:]); err != nil {
		return false, err
	}
	if wantName {
		if err := c.optReply(opt, repInfo, infoString(infoName, c.srv.opt.ExportName)); err != nil {
			return false, err
		}
	}
	if wantDesc && c.srv.opt.Description != "" {
		if err := c.optReply(opt, repInfo, infoString(infoDescription, c.srv.opt.Description)); err != nil {
			return false, err
		}
	}
	// Always sent: the spec requires it when the constraints differ from
	// the defaults, and it is harmless otherwise.
	var bs [14]byte
	be.PutUint16(bs[0:], infoBlockSize)
	be.PutUint32(bs[2:], 1)
	be.PutUint32(bs[6:], c.srv.prefBlock)
	be.PutUint32(bs[10:], uint32(c.srv.opt.MaxPayload))
	if err := c.optReply(opt, repInfo, bs[:]); err != nil {
		return false, err
	}
	if err := c.optReply(opt, repAck, nil); err != nil {
		return false, err
	}
	if opt == optGo {
		c.enterTransmission(size, flags)
		return true, nil
	}
	return false, nil
}

func infoString(typ uint16, s string) []byte {
	b := make([]byte, 2, 2+len(s))
	be.PutUint16(b, typ)
	return append(b, s...)
}

// metaContext answers NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT.
// The only context is base:allocation.
func (c *conn) metaContext(opt uint32, data []byte) error {
	set := opt == optSetMetaContext
	if set {
		// SET replaces the selection even when it fails.
		c.metaAlloc = false
		if !c.structured {
			return c.optReply(opt, repErrInvalid, []byte("structured replies must be negotiated first"))
		}
	}
	// LIST without structured replies is answered: the spec only allows
	// (not requires) refusing it, and listing is harmless.

	var match, queries bool
	ok := parseMetaRequest(data, func(q []byte) {
		queries = true
		switch string(q) {
		case metaBaseAllocation:
			match = true
		case "base:":
			// The namespace wildcard lists, but never selects.
			match = match || !set
		}
		// Unknown namespaces and leaves are ignored, as the spec requires.
	})
	if !ok {
		return c.optReply(opt, repErrInvalid, []byte("malformed meta context request"))
	}
	if !queries && !set {
		match = true // an empty LIST query lists everything
	}
	if match {
		var id uint32 // reserved (zero) in LIST replies
		if set {
			id = metaBaseAllocationID
			c.metaAlloc = true
		}
		rep := make([]byte, 4, 4+len(metaBaseAllocation))
		be.PutUint32(rep, id)
		rep = append(rep, metaBaseAllocation...)
		if err := c.optReply(opt, repMetaContext, rep); err != nil {
			return err
		}
	}
	return c.optReply(opt, repAck, nil)
}

// parseMetaRequest walks the data of a meta context option: export name
// length (32) and name, query count (32), then count x (length (32), query).
// It calls fn for each query and reports whether the data is well formed
// (every length inside the data, nothing left over). It never allocates in
// proportion to the (client-chosen) count.
func parseMetaRequest(data []byte, fn func(query []byte)) bool {
	if len(data) < 8 {
		return false
	}
	nameLen := be.Uint32(data)
	if uint64(nameLen) > uint64(len(data)-8) {
		return false
	}
	rest := data[4+nameLen:]
	count := be.Uint32(rest)
	rest = rest[4:]
	for range count {
		if len(rest) < 4 {
			return false
		}
		qlen := be.Uint32(rest)
		if uint64(qlen) > uint64(len(rest)-4) {
			return false
		}
		fn(rest[4 : 4+qlen])
		rest = rest[4+qlen:]
	}
	return len(rest) == 0
}

// optReply writes one fixed newstyle option reply.
func (c *conn) optReply(opt, typ uint32, payload []byte) error {
	var h [optReplyHeaderLength]byte
	be.PutUint64(h[0:], optReplyMagic)
	be.PutUint32(h[8:], opt)
	be.PutUint32(h[12:], typ)
	be.PutUint32(h[16:], uint32(len(payload)))
	_, _ = c.bw.Write(h[:])
	_, _ = c.bw.Write(payload)
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write reply to option %d: %w", opt, err)
	}
	return nil
}

// writeFlush writes b and flushes it (handshake only: single goroutine).
func (c *conn) writeFlush(b []byte) error {
	_, _ = c.bw.Write(b)
	return c.bw.Flush()
}
