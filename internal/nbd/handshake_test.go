package nbd

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

const testSize = 1 << 20

func testOptions() Options {
	return Options{ExportName: "disk", Description: "test disk"}
}

func TestGreetingAndUnknownClientFlags(t *testing.T) {
	_, c, errc := pipeSession(t, newMemDevice(testSize), testOptions())
	c.greet(1 << 5) // not a defined client flag
	c.expectClosed()
	if err := waitErr(t, errc); err == nil {
		t.Fatal("ServeConn returned nil for unknown client flags")
	}
}

func TestExportName(t *testing.T) {
	for _, noZeroes := range []bool{false, true} {
		_, c, errc := pipeSession(t, newMemDevice(testSize), testOptions())
		flags := uint32(clientFlagFixedNewstyle)
		if noZeroes {
			flags |= clientFlagNoZeroes
		}
		c.greet(flags)
		c.opt(optExportName, []byte("any name at all"))
		rep := c.read(10)
		if be.Uint64(rep) != testSize {
			t.Fatalf("size %d", be.Uint64(rep))
		}
		tf := be.Uint16(rep[8:])
		want := uint16(flagHasFlags | flagSendFlush | flagSendFUA | flagSendTrim | flagSendWriteZeroes |
			flagSendFastZero | flagSendCache | flagCanMultiConn)
		if tf != want {
			t.Fatalf("transmission flags %#x, want %#x", tf, want)
		}
		if !noZeroes {
			if z := c.read(124); !allZero(z) {
				t.Fatal("padding not zero")
			}
		}
		// The next bytes must be a reply to a request: framing is intact.
		c.expectErrno(0, cmdFlush, 0, 0, nil, 0)
		c.send(0, cmdDisc, 1, 0, 0, nil)
		c.expectClosed()
		if err := waitErr(t, errc); err != nil {
			t.Fatalf("ServeConn after DISC: %v", err)
		}
	}
}

func TestOptionList(t *testing.T) {
	_, c, _ := pipeSession(t, newMemDevice(testSize), testOptions())
	c.greet(clientFlagFixedNewstyle)
	reps := c.expectOptFinal(optList, nil, repAck)
	if len(reps) != 2 || reps[0].typ != repServer {
		t.Fatalf("LIST replies %+v", reps)
	}
	d := reps[0].data
	n := be.Uint32(d)
	if string(d[4:4+n]) != "disk" || string(d[4+n:]) != "test disk" {
		t.Fatalf("LIST entry %q", d)
	}
	c.expectOptFinal(optList, []byte{0}, repErrInvalid)
	// Still negotiating after errors.
	c.expectOptFinal(optList, nil, repAck)
}

func TestOptionAbort(t *testing.T) {
	_, c, errc := pipeSession(t, newMemDevice(testSize), testOptions())
	c.greet(clientFlagFixedNewstyle)
	c.expectOptFinal(optAbort, []byte("ignored"), repAck)
	c.expectClosed()
	if err := waitErr(t, errc); err != nil {
		t.Fatalf("ServeConn after ABORT: %v", err)
	}
}

func TestOptionUnsupported(t *testing.T) {
	_, c, _ := pipeSession(t, newMemDevice(testSize), testOptions())
	c.greet(clientFlagFixedNewstyle)
	c.expectOptFinal(optStartTLS, nil, repErrPolicy)
	c.expectOptFinal(optStartTLS, []byte{1}, repErrInvalid)
	c.expectOptFinal(optExtendedHeaders, nil, repErrUnsup)
	c.expectOptFinal(optPeekExport, nil, repErrUnsup)
	c.expectOptFinal(12345, bytes.Repeat([]byte{7}, 1000), repErrUnsup)
	c.expectOptFinal(optStructuredReply, []byte{1}, repErrInvalid)
	c.expectOptFinal(optList, nil, repAck)
}

func TestOptionTooBig(t *testing.T) {
	_, c, _ := pipeSession(t, newMemDevice(testSize), testOptions())
	c.greet(clientFlagFixedNewstyle)
	c.expectOptFinal(optInfo, make([]byte, maxOptionLen+1), repErrTooBig)
	c.expectOptFinal(optList, nil, repAck)

	// Beyond the discard limit the connection is dropped.
	c.write(cat(u64(optMagic), u32(optInfo), u32(maxOptionDiscard+1)))
	c.expectClosed()

	// NBD_OPT_EXPORT_NAME has no error reply: an oversized one is dropped.
	_, c, _ = pipeSession(t, newMemDevice(testSize), testOptions())
	c.greet(clientFlagFixedNewstyle)
	c.write(cat(u64(optMagic), u32(optExportName), u32(maxOptionLen+1)))
	c.expectClosed()
}

func TestBadOptionMagic(t *testing.T) {
	_, c, errc := pipeSession(t, newMemDevice(testSize), testOptions())
	c.greet(clientFlagFixedNewstyle)
	c.write(cat(u64(0x1234), u32(optList), u32(0)))
	c.expectClosed()
	if err := waitErr(t, errc); err == nil {
		t.Fatal("ServeConn returned nil for bad option magic")
	}
}

func TestOptionInfoAndGo(t *testing.T) {
	dev := newMemDevice(testSize)
	dev.blockSize = 1 << 20
	opt := testOptions()
	opt.MaxPayload = 256 << 10 // below the device block size: preferred is capped
	_, c, _ := pipeSession(t, dev, opt)
	c.greet(clientFlagFixedNewstyle | clientFlagNoZeroes)

	for _, bad := range [][]byte{
		{0, 0, 0},                            // shorter than the fixed part
		cat(u32(100), []byte("x"), u16(0)),   // name length beyond the data
		cat(u32(0), u16(2), u16(infoName)),   // fewer requests than counted
		cat(u32(0), u16(0), u16(infoName)),   // trailing bytes
		cat(u32(0xffffffff), u16(0), u16(0)), // huge name length
	} {
		c.expectOptFinal(optInfo, bad, repErrInvalid)
	}

	reps := c.expectOptFinal(optInfo, infoReq("whatever", infoName, infoDescription, infoBlockSize, 999), repAck)
	got := map[uint16][]byte{}
	for _, r := range reps[:len(reps)-1] {
		if r.typ != repInfo {
			t.Fatalf("unexpected reply %+v", r)
		}
		got[be.Uint16(r.data)] = r.data[2:]
	}
	if e := got[infoExport]; len(e) != 10 || be.Uint64(e) != testSize {
		t.Fatalf("NBD_INFO_EXPORT %x", e)
	}
	if string(got[infoName]) != "disk" || string(got[infoDescription]) != "test disk" {
		t.Fatalf("name %q description %q", got[infoName], got[infoDescription])
	}
	bs := got[infoBlockSize]
	if len(bs) != 12 || be.Uint32(bs) != 1 || be.Uint32(bs[4:]) != 256<<10 || be.Uint32(bs[8:]) != 256<<10 {
		t.Fatalf("NBD_INFO_BLOCK_SIZE %x", bs)
	}

	// Without requests: export info and block size only.
	reps = c.expectOptFinal(optGo, infoReq(""), repAck)
	for _, r := range reps[:len(reps)-1] {
		if typ := be.Uint16(r.data); typ != infoExport && typ != infoBlockSize {
			t.Fatalf("unrequested info %d", typ)
		}
	}
	// In transmission now, without padding.
	c.expectErrno(0, cmdFlush, 0, 0, nil, 0)
}

func TestPreferredBlockSize(t *testing.T) {
	for _, tc := range []struct{ dev, maxPayload, want int }{
		{4096, 32 << 20, 4096},
		{1 << 20, 32 << 20, 1 << 20},
		{256, 32 << 20, 512},        // raised to the spec's floor
		{3000, 32 << 20, 4096},      // not a power of two: default
		{0, 32 << 20, 4096},         // unknown
		{1 << 20, 3 << 18, 1 << 19}, // capped to a power of two <= maximum
	} {
		if got := preferredBlockSize(tc.dev, tc.maxPayload); got != uint32(tc.want) {
			t.Errorf("preferredBlockSize(%d, %d) = %d, want %d", tc.dev, tc.maxPayload, got, tc.want)
		}
	}
}

func TestMetaContextNegotiation(t *testing.T) {
	_, c, _ := pipeSession(t, newMemDevice(testSize), testOptions())
	c.greet(clientFlagFixedNewstyle)

	// SET requires structured replies; LIST is answered anyway.
	c.expectOptFinal(optSetMetaContext, metaReq("", metaBaseAllocation), repErrInvalid)
	reps := c.expectOptFinal(optListMetaContext, metaReq(""), repAck)
	if len(reps) != 2 || string(reps[0].data[4:]) != metaBaseAllocation {
		t.Fatalf("LIST all: %+v", reps)
	}

	c.expectOptFinal(optStructuredReply, nil, repAck)
	for _, tc := range []struct {
		opt     uint32
		queries []string
		want    bool
	}{
		{optListMetaContext, []string{"base:"}, true},
		{optListMetaContext, []string{metaBaseAllocation}, true},
		{optListMetaContext, []string{"base:", metaBaseAllocation}, true}, // listed once
		{optListMetaContext, []string{"base:nosuch", "qemu:dirty-bitmap:x", "nocolon"}, false},
		{optSetMetaContext, []string{"base:"}, false}, // the wildcard never selects
		{optSetMetaContext, []string{"x-foo:bar"}, false},
		{optSetMetaContext, nil, false},
		{optSetMetaContext, []string{"x-foo:bar", metaBaseAllocation}, true},
	} {
		reps := c.expectOptFinal(tc.opt, metaReq("disk", tc.queries...), repAck)
		if got := len(reps) == 2; got != tc.want {
			t.Fatalf("option %d %q: replies %+v", tc.opt, tc.queries, reps)
		}
		if tc.want {
			id := be.Uint32(reps[0].data)
			if string(reps[0].data[4:]) != metaBaseAllocation || (tc.opt == optSetMetaContext) != (id != 0) {
				t.Fatalf("option %d: context reply %x", tc.opt, reps[0].data)
			}
		}
	}

	for _, bad := range [][]byte{
		{0, 0, 0, 0},                              // no query count
		cat(u32(10), []byte("ab"), u32(0)),        // name beyond data
		cat(u32(0), u32(2), u32(1), []byte("x")),  // fewer queries than counted
		cat(u32(0), u32(1), u32(50), []byte("x")), // query beyond data
		cat(u32(0), u32(0), []byte("trailing")),   // leftovers
		cat(u32(0), u32(0xffffffff), u32(0)),      // huge count, tiny data
		cat(u32(0xfffffffc), u32(0), u32(0)),      // huge name length
	} {
		c.expectOptFinal(optListMetaContext, bad, repErrInvalid)
		c.expectOptFinal(optSetMetaContext, bad, repErrInvalid)
	}
}

func TestSetMetaContextFailureClearsSelection(t *testing.T) {
	_, c, _ := pipeSession(t, newMemDevice(testSize), testOptions())
	c.greet(clientFlagFixedNewstyle)
	c.expectOptFinal(optStructuredReply, nil, repAck)
	c.expectOptFinal(optSetMetaContext, metaReq("", metaBaseAllocation), repAck)
	c.expectOptFinal(optSetMetaContext, []byte{1}, repErrInvalid)
	c.expectOptFinal(optGo, infoReq(""), repAck)
	c.expectErrno(0, cmdBlockStatus, 0, 4096, nil, errInval)
}

func TestHandshakeTimeout(t *testing.T) {
	opt := testOptions()
	opt.HandshakeTimeout = 50 * time.Millisecond
	_, c, errc := pipeSession(t, newMemDevice(testSize), opt)
	c.greet(clientFlagFixedNewstyle)
	// Send nothing more: the server must give up on its own.
	c.expectClosed()
	if err := waitErr(t, errc); err == nil {
		t.Fatal("ServeConn returned nil after a handshake timeout")
	}
}

func TestHandshakeTruncated(t *testing.T) {
	// Every prefix of a valid handshake, then EOF: the server returns.
	full := cat(u32(clientFlagFixedNewstyle), optBytes(optStructuredReply, nil), optBytes(optGo, infoReq("x", infoName)))
	s := NewServer(newMemDevice(testSize), testOptions())
	for i := range len(full) {
		cs, ss := net.Pipe()
		errc := make(chan error, 1)
		go func() { errc <- s.ServeConn(context.Background(), ss) }()
		go func() { _, _ = io.Copy(io.Discard, cs) }()
		go func() { _, _ = cs.Write(full[:i]); _ = cs.Close() }()
		if err := waitErr(t, errc); err == nil {
			t.Fatalf("prefix %d: ServeConn returned nil", i)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
