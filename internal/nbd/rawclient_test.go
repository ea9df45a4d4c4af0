package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// rawClient speaks the wire protocol byte by byte, so tests control every
// field (including the wrong ones). All methods fail the test on I/O error
// and must be called from the test goroutine.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

const testIOTimeout = 20 * time.Second

func newRawClient(t testing.TB, nc net.Conn) *rawClient {
	t.Helper()
	// A stuck server fails the test instead of hanging it.
	_ = nc.SetDeadline(time.Now().Add(testIOTimeout))
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

func (c *rawClient) read(n int) []byte {
	c.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c.br, b); err != nil {
		c.t.Fatalf("client read %d bytes: %v", n, err)
	}
	return b
}

// expectClosed asserts that the server drops the connection (possibly after
// some replies, which are skipped).
func (c *rawClient) expectClosed() {
	c.t.Helper()
	_, err := io.Copy(io.Discard, c.br)
	if err != nil && !errors.Is(err, io.ErrClosedPipe) && !isConnReset(err) {
		c.t.Fatalf("expected the server to close the connection, got %v", err)
	}
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// greet reads the server greeting and answers with client flags.
func (c *rawClient) greet(clientFlags uint32) {
	c.t.Helper()
	g := c.read(18)
	if be.Uint64(g) != nbdMagic || be.Uint64(g[8:]) != optMagic {
		c.t.Fatalf("bad greeting % x", g)
	}
	if f := be.Uint16(g[16:]); f != flagFixedNewstyle|flagNoZeroes {
		c.t.Fatalf("handshake flags %#x", f)
	}
	c.write(u32(clientFlags))
}

func optBytes(opt uint32, data []byte) []byte {
	return cat(u64(optMagic), u32(opt), u32(uint32(len(data))), data)
}

func (c *rawClient) opt(opt uint32, data []byte) {
	c.t.Helper()
	c.write(optBytes(opt, data))
}

type optReply struct {
	opt, typ uint32
	data     []byte
}

func (c *rawClient) optReply() optReply {
	c.t.Helper()
	h := c.read(20)
	if m := be.Uint64(h); m != optReplyMagic {
		c.t.Fatalf("option reply magic %#x", m)
	}
	r := optReply{opt: be.Uint32(h[8:]), typ: be.Uint32(h[12:])}
	r.data = c.read(int(be.Uint32(h[16:])))
	return r
}

// optReplies reads the replies to opt up to the final one (ACK or error).
func (c *rawClient) optReplies(opt uint32) []optReply {
	c.t.Helper()
	var out []optReply
	for {
		r := c.optReply()
		if r.opt != opt {
			c.t.Fatalf("reply for option %d, want %d", r.opt, opt)
		}
		out = append(out, r)
		if r.typ == repAck || r.typ&repErrorBit != 0 {
			return out
		}
	}
}

// expectOptFinal sends opt and checks the type of its final reply.
func (c *rawClient) expectOptFinal(opt uint32, data []byte, want uint32) []optReply {
	c.t.Helper()
	c.opt(opt, data)
	reps := c.optReplies(opt)
	if got := reps[len(reps)-1].typ; got != want {
		c.t.Fatalf("option %d: final reply %#x (%q), want %#x", opt, got, reps[len(reps)-1].data, want)
	}
	return reps
}

func infoReq(name string, infos ...uint16) []byte {
	b := cat(u32(uint32(len(name))), []byte(name), u16(uint16(len(infos))))
	for _, i := range infos {
		b = append(b, u16(i)...)
	}
	return b
}

func metaReq(name string, queries ...string) []byte {
	b := cat(u32(uint32(len(name))), []byte(name), u32(uint32(len(queries))))
	for _, q := range queries {
		b = append(b, cat(u32(uint32(len(q))), []byte(q))...)
	}
	return b
}

// negotiate runs a typical handshake ending in NBD_OPT_GO and returns the
// export size and transmission flags.
func (c *rawClient) negotiate(structured, meta bool) (uint64, uint16) {
	c.t.Helper()
	c.greet(clientFlagFixedNewstyle | clientFlagNoZeroes)
	if structured {
		c.expectOptFinal(optStructuredReply, nil, repAck)
	}
	if meta {
		reps := c.expectOptFinal(optSetMetaContext, metaReq("", metaBaseAllocation), repAck)
		if len(reps) != 2 || reps[0].typ != repMetaContext {
			c.t.Fatalf("SET_META_CONTEXT replies %+v", reps)
		}
	}
	reps := c.expectOptFinal(optGo, infoReq("", infoBlockSize), repAck)
	for _, r := range reps {
		if r.typ == repInfo && be.Uint16(r.data) == infoExport {
			return be.Uint64(r.data[2:]), be.Uint16(r.data[10:])
		}
	}
	c.t.Fatal("no NBD_INFO_EXPORT")
	return 0, 0
}

func reqBytes(flags, typ uint16, cookie, off uint64, length uint32, payload []byte) []byte {
	return cat(u32(requestMagic), u16(flags), u16(typ), u64(cookie), u64(off), u32(length), payload)
}

func (c *rawClient) send(flags, typ uint16, cookie, off uint64, length uint32, payload []byte) {
	c.t.Helper()
	c.write(reqBytes(flags, typ, cookie, off, length, payload))
}

type chunk struct {
	flags, typ uint16
	cookie     uint64
	payload    []byte
}

// reply is one whole reply, simple or structured.
type reply struct {
	cookie     uint64
	errno      uint32
	structured bool
	data       []byte  // READ data (assembled from content chunks)
	chunks     []chunk // structured only
	msg        string  // structured error message
}

// readReply reads one reply. readLen gives, per cookie, the data length a
// successful simple READ reply carries (simple replies are not self-framing).
func (c *rawClient) readReply(readLen map[uint64]int) reply {
	c.t.Helper()
	m := c.read(4)
	switch be.Uint32(m) {
	case simpleReplyMagic:
		h := c.read(12)
		r := reply{errno: be.Uint32(h), cookie: be.Uint64(h[4:])}
		if n := readLen[r.cookie]; r.errno == 0 && n > 0 {
			r.data = c.read(n)
		}
		return r
	case structuredReplyMagic:
		r := reply{structured: true}
		for first := true; ; first = false {
			if !first {
				if mm := be.Uint32(c.read(4)); mm != structuredReplyMagic {
					c.t.Fatalf("chunk magic %#x inside a structured reply", mm)
				}
			}
			h := c.read(16)
			ch := chunk{flags: be.Uint16(h), typ: be.Uint16(h[2:]), cookie: be.Uint64(h[4:])}
			ch.payload = c.read(int(be.Uint32(h[12:])))
			if !first && ch.cookie != r.cookie {
				c.t.Fatalf("chunks of different cookies interleaved")
			}
			r.cookie = ch.cookie
			r.chunks = append(r.chunks, ch)
			switch ch.typ {
			case replyTypeOffsetData:
				r.data = append(r.data, ch.payload[8:]...)
			case replyTypeError, replyTypeErrorOffset:
				r.errno = be.Uint32(ch.payload)
				r.msg = string(ch.payload[6 : 6+be.Uint16(ch.payload[4:])])
			}
			if ch.flags&replyFlagDone != 0 {
				return r
			}
		}
	}
	c.t.Fatalf("reply magic % x", m)
	return reply{}
}

// do sends one request and reads its reply (nothing else may be in flight).
func (c *rawClient) do(flags, typ uint16, off uint64, length uint32, payload []byte) reply {
	c.t.Helper()
	const cookie = 0xc0ffee
	c.send(flags, typ, cookie, off, length, payload)
	var rl map[uint64]int
	if typ == cmdRead {
		rl = map[uint64]int{cookie: int(length)}
	}
	r := c.readReply(rl)
	if r.cookie != cookie {
		c.t.Fatalf("reply cookie %#x, want %#x", r.cookie, cookie)
	}
	return r
}

// expectErrno runs a request and checks its error value.
func (c *rawClient) expectErrno(flags, typ uint16, off uint64, length uint32, payload []byte, want uint32) reply {
	c.t.Helper()
	r := c.do(flags, typ, off, length, payload)
	if r.errno != want {
		c.t.Fatalf("%s flags %#x off %d len %d: errno %d (%q), want %d", cmdName(typ), flags, off, length, r.errno, r.msg, want)
	}
	return r
}

// pipeSession starts a server on one end of a net.Pipe. The returned
// channel yields ServeConn's result. Cleanup closes the client and waits.
func pipeSession(t *testing.T, dev Device, opt Options) (*Server, *rawClient, <-chan error) {
	t.Helper()
	s := NewServer(dev, opt)
	cs, ss := net.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- s.ServeConn(context.Background(), ss) }()
	t.Cleanup(func() {
		_ = cs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testIOTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, newRawClient(t, cs), errc
}

// transmissionSession is pipeSession through a GO handshake.
func transmissionSession(t *testing.T, dev Device, opt Options, structured, meta bool) (*Server, *rawClient, <-chan error) {
	t.Helper()
	s, c, errc := pipeSession(t, dev, opt)
	c.negotiate(structured, meta)
	return s, c, errc
}

// waitErr waits for a ServeConn result.
func waitErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(testIOTimeout):
		t.Fatal("ServeConn did not return")
		return nil
	}
}

// serverGoroutines lists goroutines running this package's server code. It
// must be empty once Shutdown has returned nil.
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/nbd.(*conn)") || strings.Contains(g, "internal/nbd.(*Server)") {
			out = append(out, g)
		}
	}
	return out
}
