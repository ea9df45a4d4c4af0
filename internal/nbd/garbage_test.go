package nbd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// goHandshake is a client's side of a complete handshake (GO with
// structured replies and base:allocation), pipelined in one write.
func goHandshake() []byte {
	return cat(
		u32(clientFlagFixedNewstyle|clientFlagNoZeroes),
		optBytes(optStructuredReply, nil),
		optBytes(optSetMetaContext, metaReq("", metaBaseAllocation)),
		optBytes(optGo, infoReq("", infoBlockSize)),
	)
}

// garbageClients are misbehaving clients. Each writes its bytes (reading and
// discarding whatever the server says) and then hangs up, unless hold is
// set, in which case it stays connected until the server drops it.
var garbageClients = []struct {
	name  string
	bytes func(r *rand.Rand) []byte
	hold  bool
}{
	{"random bytes", func(r *rand.Rand) []byte { return randBytes(r, 4096) }, false},
	{"greeting answer then random", func(r *rand.Rand) []byte { return cat(u32(clientFlagFixedNewstyle), randBytes(r, 4096)) }, false},
	{"random options", func(r *rand.Rand) []byte {
		b := u32(clientFlagFixedNewstyle)
		for range 50 {
			o := uint32(r.IntN(16))
			if o == optAbort {
				o = optList // ABORT would end the session cleanly
			}
			b = append(b, optBytes(o, randBytes(r, r.IntN(64)))...)
		}
		return b
	}, false},
	{"truncated handshake", func(r *rand.Rand) []byte { h := goHandshake(); return h[:r.IntN(len(h))] }, false},
	{"random requests", func(r *rand.Rand) []byte { return cat(goHandshake(), randBytes(r, 4096)) }, false},
	{"hang up mid write payload", func(r *rand.Rand) []byte {
		return cat(goHandshake(), reqBytes(0, cmdWrite, 1, 0, 1<<20, randBytes(r, 1000)))
	}, false},
	{"oversized write", func(r *rand.Rand) []byte {
		return cat(goHandshake(), reqBytes(0, cmdWrite, 1, 0, 3<<30, nil))
	}, true},
	{"bad request magic", func(r *rand.Rand) []byte {
		return cat(goHandshake(), reqBytes(0, cmdRead, 1, 0, 512, nil)[:20], randBytes(r, 100))
	}, true},
	{"reads never collected", func(r *rand.Rand) []byte {
		var b []byte
		for i := range 64 {
			b = append(b, reqBytes(0, cmdRead, uint64(i), 0, 65536, nil)...)
		}
		return cat(goHandshake(), b)
	}, false},
	{"oversized option", func(r *rand.Rand) []byte {
		return cat(u32(clientFlagFixedNewstyle), u64(optMagic), u32(optInfo), u32(1<<30))
	}, true},
	{"valid requests, no disconnect", func(r *rand.Rand) []byte {
		return cat(goHandshake(), reqBytes(0, cmdFlush, 1, 0, 0, nil), reqBytes(0, cmdRead, 2, 4096, 512, nil))
	}, false},
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// runGarbage plays one garbage client against addr. It never touches t:
// garbage clients run beside the test goroutine.
func runGarbage(addr string, data []byte, hold bool) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testIOTimeout))
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, nc)
	}()
	_, _ = nc.Write(data)
	if hold {
		<-drained // until the server hangs up
		return
	}
	_ = nc.Close()
	<-drained
}

func TestGarbageClients(t *testing.T) {
	dev := newMemDevice(testSize)
	opt := testOptions()
	opt.HandshakeTimeout = 5 * time.Second
	ended := &countHandler{msg: "nbd: connection ended"}
	opt.Logger = slog.New(ended)
	s, addr, serveErr := tcpServer(t, dev, opt)

	good := dial(t, addr)
	good.negotiate(true, true)

	// A client that connects and says nothing: Shutdown must drop it.
	silent := dial(t, addr)
	silent.read(18)

	var wg sync.WaitGroup
	for round := range 4 {
		for i, g := range garbageClients {
			data := g.bytes(rand.New(rand.NewPCG(uint64(round), uint64(i))))
			wg.Go(func() { runGarbage(addr, data, g.hold) })
		}
	}

	// Meanwhile the good client keeps getting correct answers; it works
	// above 512 KiB, where no garbage request can write.
	garbageDone := make(chan struct{})
	go func() { wg.Wait(); close(garbageDone) }()
	for i := 0; ; i++ {
		off := uint64(512<<10 + (i%64)*4096)
		data := pattern(4096, byte(i))
		good.expectErrno(cmdFlagFUA, cmdWrite, off, 4096, data, 0)
		if r := good.expectErrno(0, cmdRead, off, 4096, nil, 0); !bytes.Equal(r.data, data) {
			t.Fatalf("round %d: read back differs", i)
		}
		if bs := blockStatus(t, good.expectErrno(cmdFlagReqOne, cmdBlockStatus, off, 4096, nil, 0)); bs[0] != [2]uint32{4096, 0} {
			t.Fatalf("round %d: block status %v", i, bs)
		}
		select {
		case <-garbageDone:
		default:
			if i < 10000 {
				continue
			}
			t.Fatal("garbage clients did not finish")
		}
		break
	}
	// A garbage client may be gone before the server has read all it
	// sent: wait (bounded) until the server has ended every garbage
	// session by itself, else Shutdown would end the last ones.
	want := int64(4 * len(garbageClients))
	for deadline := time.Now().Add(10 * time.Second); ended.n.Load() < want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	good.send(0, cmdDisc, 0, 0, 0, nil)
	good.expectClosed()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	silent.expectClosed()
	if err := recv(t, serveErr); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	noServerGoroutines(t)
	if !s.sem.TryAcquire(s.opt.MaxBufferedBytes) {
		t.Fatal("buffer budget leaked")
	}
	// Every garbage session ended in an error (none is a clean end).
	if n := ended.n.Load(); n < want {
		t.Fatalf("%d sessions ended with an error, want at least %d", n, want)
	}
}

// countHandler counts log records with a given message.
type countHandler struct {
	msg string
	n   atomic.Int64
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }
