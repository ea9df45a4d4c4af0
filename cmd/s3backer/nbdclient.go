package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// The client side of the NBD handshake (fixed newstyle, NBD_OPT_GO), just
// enough to ask nbdkit for the export's size and flags and to hand a
// connection in the transmission phase to the kernel.

const (
	nbdMagic      = 0x4e42444d41474943 // "NBDMAGIC"
	nbdOptMagic   = 0x49484156454F5054 // "IHAVEOPT"
	nbdReplyMagic = 0x3e889045565a9
	nbdReqMagic   = 0x25609513

	nbdFlagFixedNewstyle = 1 << 0
	nbdFlagNoZeroes      = 1 << 1

	nbdOptGo      = 7
	nbdRepAck     = 1
	nbdRepInfo    = 3
	nbdRepErr     = 1 << 31
	nbdInfoExport = 0
	nbdCmdDisc    = 2

	// Transmission flags the kernel driver cannot use without structured
	// replies or resizing, which a handed-over connection never has.
	nbdFlagSendDF     = 1 << 7
	nbdFlagSendResize = 1 << 9
)

// nbdExport is what NBD_OPT_GO tells of the default export.
type nbdExport struct {
	size  int64
	flags uint16 // transmission flags
}

// nbdHandshake negotiates the default export on c, leaving it in the
// transmission phase with simple replies (what the kernel speaks).
func nbdHandshake(c net.Conn) (nbdExport, error) {
	var greet [18]byte
	if _, err := io.ReadFull(c, greet[:]); err != nil {
		return nbdExport{}, fmt.Errorf("NBD handshake: %w", err)
	}
	if binary.BigEndian.Uint64(greet[0:]) != nbdMagic || binary.BigEndian.Uint64(greet[8:]) != nbdOptMagic {
		return nbdExport{}, errors.New("NBD handshake: not a fixed newstyle NBD server")
	}
	hflags := binary.BigEndian.Uint16(greet[16:])
	if hflags&nbdFlagFixedNewstyle == 0 {
		return nbdExport{}, errors.New("NBD handshake: the server is not fixed newstyle")
	}
	cflags := uint32(nbdFlagFixedNewstyle)
	if hflags&nbdFlagNoZeroes != 0 {
		cflags |= nbdFlagNoZeroes
	}
	// Client flags, then NBD_OPT_GO for export "" with no info requests.
	msg := binary.BigEndian.AppendUint32(nil, cflags)
	msg = binary.BigEndian.AppendUint64(msg, nbdOptMagic)
	msg = binary.BigEndian.AppendUint32(msg, nbdOptGo)
	msg = binary.BigEndian.AppendUint32(msg, 6)
	msg = binary.BigEndian.AppendUint32(msg, 0) // name length
	msg = binary.BigEndian.AppendUint16(msg, 0) // information requests
	if _, err := c.Write(msg); err != nil {
		return nbdExport{}, fmt.Errorf("NBD handshake: %w", err)
	}
	var exp nbdExport
	gotExport := false
	for {
		var hdr [20]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return nbdExport{}, fmt.Errorf("NBD handshake: %w", err)
		}
		if binary.BigEndian.Uint64(hdr[0:]) != nbdReplyMagic || binary.BigEndian.Uint32(hdr[8:]) != nbdOptGo {
			return nbdExport{}, errors.New("NBD handshake: bad option reply")
		}
		typ, n := binary.BigEndian.Uint32(hdr[12:]), binary.BigEndian.Uint32(hdr[16:])
		if n > 64<<10 {
			return nbdExport{}, fmt.Errorf("NBD handshake: option reply of %d bytes", n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(c, data); err != nil {
			return nbdExport{}, fmt.Errorf("NBD handshake: %w", err)
		}
		switch {
		case typ&nbdRepErr != 0:
			return nbdExport{}, fmt.Errorf("NBD handshake: the server refused the export (error %#x): %s", typ, data)
		case typ == nbdRepInfo && len(data) >= 12 && binary.BigEndian.Uint16(data) == nbdInfoExport:
			exp.size = int64(binary.BigEndian.Uint64(data[2:]))
			exp.flags = binary.BigEndian.Uint16(data[10:])
			gotExport = true
		case typ == nbdRepAck:
			if !gotExport {
				return nbdExport{}, errors.New("NBD handshake: the server did not give the export's size")
			}
			return exp, nil
		}
	}
}

// nbdDisconnect ends a session in the transmission phase politely.
func nbdDisconnect(c net.Conn) error {
	req := binary.BigEndian.AppendUint32(nil, nbdReqMagic)
	req = binary.BigEndian.AppendUint16(req, 0)
	req = binary.BigEndian.AppendUint16(req, nbdCmdDisc)
	req = append(req, make([]byte, 8+8+4)...) // cookie, offset, length
	_, err := c.Write(req)
	return err
}
