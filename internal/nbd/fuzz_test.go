package nbd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// memConn is a net.Conn whose client side is a fixed byte string (then EOF)
// and whose output is collected. Nothing on it can block, so a session over
// it ends as soon as the server has consumed the input.
type memConn struct {
	in *bytes.Reader

	mu        sync.Mutex
	out       []byte
	truncated bool
}

const memConnOutCap = 4 << 20 // keep at most this much output for checks

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

func (c *memConn) Read(p []byte) (int, error) { return c.in.Read(p) }

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.truncated = c.truncated || len(c.out)+len(p) > memConnOutCap; c.truncated {
		c.out = nil
	} else {
		c.out = append(c.out, p...)
	}
	return len(p), nil
}

// output returns what the server wrote, or nil if it exceeded the cap.
func (c *memConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out
}

func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzSession feeds input to a server as a whole client session and returns
// what the server sent. It fails if the session does not end promptly.
func fuzzSession(t *testing.T, dev Device, input []byte) []byte {
	s := NewServer(dev, Options{ExportName: "fuzz", Description: "d", MaxPayload: 64 << 10, MaxInFlight: 8})
	mc := &memConn{in: bytes.NewReader(input)}
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(context.Background(), mc) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end after its input ran out")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !s.sem.TryAcquire(s.opt.MaxBufferedBytes) {
		t.Fatal("buffer budget leaked")
	}
	return mc.output()
}

// Seeds shared by f.Add and the committed corpus.

func handshakeSeeds() [][]byte {
	exportName := cat(u32(clientFlagFixedNewstyle), optBytes(optExportName, []byte("x")))
	return [][]byte{
		cat(goHandshake(), reqBytes(0, cmdRead, 1, 0, 4096, nil), reqBytes(0, cmdDisc, 2, 0, 0, nil)),
		cat(goHandshake(), reqBytes(cmdFlagFUA, cmdWrite, 1, 512, 8, []byte("abcdefgh")), reqBytes(0, cmdFlush, 2, 0, 0, nil)),
		cat(goHandshake(), reqBytes(cmdFlagReqOne, cmdBlockStatus, 1, 0, 65536, nil)),
		cat(exportName, reqBytes(0, cmdRead, 1, 0, 512, nil)),
		cat(u32(clientFlagFixedNewstyle), optBytes(optList, nil), optBytes(optInfo, infoReq("", infoName, infoDescription)),
			optBytes(optListMetaContext, metaReq("", "base:")), optBytes(optStartTLS, nil), optBytes(optAbort, nil)),
		cat(u32(clientFlagFixedNewstyle|clientFlagNoZeroes), optBytes(optSetMetaContext, metaReq("", metaBaseAllocation)),
			optBytes(99, []byte("??")), optBytes(optGo, infoReq(""))),
		cat(u32(clientFlagFixedNewstyle), u64(optMagic), u32(optInfo), u32(maxOptionLen+1)),
		u32(0xff),
	}
}

// Request seeds: the first byte picks the handshake (see requestPrefix).
func requestSeeds() [][]byte {
	return [][]byte{
		cat([]byte{3}, reqBytes(0, cmdRead, 1, 0, 4096, nil), reqBytes(cmdFlagDF, cmdRead, 2, 100, 10, nil)),
		cat([]byte{3}, reqBytes(cmdFlagFUA, cmdWrite, 1, 0, 4, []byte("data")), reqBytes(0, cmdRead, 2, 0, 4, nil)),
		cat([]byte{3}, reqBytes(0, cmdBlockStatus, 1, 0, 1<<20, nil), reqBytes(cmdFlagReqOne, cmdBlockStatus, 2, 4096, 4096, nil)),
		cat([]byte{3}, reqBytes(cmdFlagFastZero|cmdFlagNoHole, cmdWriteZeroes, 1, 0, 4096, nil),
			reqBytes(cmdFlagNoHole, cmdWriteZeroes, 2, 0, 4096, nil), reqBytes(0, cmdTrim, 3, 0, 4096, nil),
			reqBytes(0, cmdCache, 4, 0, 4096, nil), reqBytes(0, cmdFlush, 5, 0, 0, nil), reqBytes(0, cmdDisc, 6, 0, 0, nil)),
		cat([]byte{0}, reqBytes(0, cmdRead, 1, 0, 4096, nil), reqBytes(0, cmdBlockStatus, 2, 0, 512, nil)),
		cat([]byte{4}, reqBytes(0, cmdWrite, 1, 0, 4, []byte("nope")), reqBytes(0, cmdTrim, 2, 0, 512, nil)),
		cat([]byte{1}, reqBytes(0, 42, 1, 0, 0, nil), reqBytes(1<<15, cmdRead, 2, 0, 1, nil), reqBytes(0, cmdRead, 3, 1<<62, 1, nil)),
		cat([]byte{3}, reqBytes(0, cmdWrite, 1, 0, 64<<10+1, make([]byte, 100))), // over MaxPayload, payload cut short
		cat([]byte{3}, reqBytes(0, cmdWrite, 1, 0, 64<<20, nil)),
		cat([]byte{3}, u32(0x12345678)),
	}
}

// requestPrefix scripts the handshake for FuzzRequest from a mode byte:
// bit 0 structured replies, bit 1 base:allocation, bit 2 read-only device.
func requestPrefix(mode byte) []byte {
	b := u32(clientFlagFixedNewstyle | clientFlagNoZeroes)
	if mode&1 != 0 {
		b = append(b, optBytes(optStructuredReply, nil)...)
	}
	if mode&3 == 3 { // SET_META_CONTEXT needs structured replies
		b = append(b, optBytes(optSetMetaContext, metaReq("", metaBaseAllocation))...)
	}
	return append(b, optBytes(optGo, infoReq(""))...)
}

func FuzzHandshake(f *testing.F) {
	for _, s := range handshakeSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		dev := newMemDevice(1 << 20)
		out := fuzzSession(t, dev, input)
		if out == nil {
			return // too much output to keep
		}
		if len(out) < 18 || be.Uint64(out) != nbdMagic || be.Uint64(out[8:]) != optMagic {
			t.Fatalf("no greeting: % x", out[:min(len(out), 18)])
		}
	})
}

func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		if len(input) == 0 {
			return
		}
		mode := input[0]
		dev := newMemDevice(1 << 20)
		dev.readOnly = mode&4 != 0
		out := fuzzSession(t, dev, cat(requestPrefix(mode), input[1:]))
		if out == nil {
			return // too much output to keep
		}
		replies := skipHandshakeOutput(t, out)
		if mode&1 != 0 {
			checkStructuredStream(t, replies)
		}
	})
}

// skipHandshakeOutput returns the server output after the NBD_OPT_GO ACK.
func skipHandshakeOutput(t *testing.T, out []byte) []byte {
	if len(out) < 18 {
		t.Fatalf("short output % x", out)
	}
	out = out[18:]
	for {
		if len(out) < 20 || be.Uint64(out) != optReplyMagic {
			t.Fatalf("bad option reply % x", out[:min(len(out), 20)])
		}
		opt, typ, n := be.Uint32(out[8:]), be.Uint32(out[12:]), be.Uint32(out[16:])
		if uint64(len(out)-20) < uint64(n) {
			t.Fatal("truncated option reply")
		}
		out = out[20+n:]
		if opt == optGo && typ == repAck {
			return out
		}
		if typ&repErrorBit != 0 {
			t.Fatalf("scripted option %d failed: %#x", opt, typ)
		}
	}
}

// checkStructuredStream checks that a structured-reply stream is well formed:
// with structured replies every reply is self-framing, and each chunk must
// follow the spec's rules for its type.
func checkStructuredStream(t *testing.T, b []byte) {
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("trailing bytes % x", b)
		}
		switch be.Uint32(b) {
		case simpleReplyMagic:
			if len(b) < simpleReplyLen {
				t.Fatal("truncated simple reply")
			}
			b = b[simpleReplyLen:]
		case structuredReplyMagic:
			if len(b) < structuredHeaderLen {
				t.Fatal("truncated chunk header")
			}
			flags, typ, n := be.Uint16(b[4:]), be.Uint16(b[6:]), be.Uint32(b[16:])
			if uint64(len(b)-structuredHeaderLen) < uint64(n) {
				t.Fatal("truncated chunk payload")
			}
			p := b[structuredHeaderLen : structuredHeaderLen+int(n)]
			b = b[structuredHeaderLen+int(n):]
			if flags != replyFlagDone {
				t.Fatalf("chunk flags %#x (every reply is one chunk)", flags)
			}
			if err := checkChunk(typ, p); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("bad reply magic % x", b[:4])
		}
	}
}

func checkChunk(typ uint16, p []byte) error {
	switch typ {
	case replyTypeNone:
		if len(p) != 0 {
			return fmt.Errorf("NONE chunk with %d bytes", len(p))
		}
	case replyTypeOffsetData:
		if len(p) < 9 {
			return fmt.Errorf("OFFSET_DATA chunk of %d bytes", len(p))
		}
	case replyTypeBlockStatus:
		if len(p) < 12 || (len(p)-4)%8 != 0 || be.Uint32(p) != metaBaseAllocationID {
			return fmt.Errorf("BLOCK_STATUS payload % x", p)
		}
		for d := p[4:]; len(d) > 0; d = d[8:] {
			if be.Uint32(d) == 0 || be.Uint32(d[4:])&^(stateHole|stateZero) != 0 {
				return fmt.Errorf("bad descriptor % x", d[:8])
			}
		}
	case replyTypeError:
		if len(p) < 6 || be.Uint32(p) == 0 || int(be.Uint16(p[4:])) != len(p)-6 {
			return fmt.Errorf("ERROR payload % x", p)
		}
	default:
		return fmt.Errorf("unexpected chunk type %d", typ)
	}
	return nil
}

// TestWriteFuzzCorpus regenerates testdata/fuzz from the seed functions
// when NBD_WRITE_FUZZ_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("NBD_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set NBD_WRITE_FUZZ_CORPUS=1 to regenerate testdata/fuzz")
	}
	for name, seeds := range map[string][][]byte{"FuzzHandshake": handshakeSeeds(), "FuzzRequest": requestSeeds()} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
