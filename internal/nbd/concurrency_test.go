package nbd

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// recv waits for a test signal, failing instead of hanging.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testIOTimeout):
		t.Fatal("timed out waiting for a signal")
		var zero T
		return zero
	}
}

// gatedDevice holds operations named op in the device until the gate opens,
// signalling each start.
func gatedDevice(op string) (dev *memDevice, started chan int64, gate chan struct{}) {
	dev = newMemDevice(testSize)
	started = make(chan int64, 100)
	gate = make(chan struct{})
	dev.hook = func(ctx context.Context, o string, off, length int64) error {
		if o == op {
			started <- off
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	return dev, started, gate
}

func TestOutOfOrderReplies(t *testing.T) {
	modes(t, func(t *testing.T, structured bool) {
		dev := newMemDevice(testSize)
		started := make(chan struct{}, 1)
		release := make(chan struct{})
		dev.hook = func(ctx context.Context, op string, off, length int64) error {
			if op == "read" && off == 0 {
				started <- struct{}{}
				<-release
			}
			return nil
		}
		copy(dev.data[8192:], "fast")
		_, c, _ := transmissionSession(t, dev, testOptions(), structured, false)
		lens := map[uint64]int{1: 4096, 2: 4}
		c.send(0, cmdRead, 1, 0, 4096, nil)
		recv(t, started)
		c.send(0, cmdRead, 2, 8192, 4, nil)
		if r := c.readReply(lens); r.cookie != 2 || string(r.data) != "fast" {
			t.Fatalf("first reply cookie %d data %q; want the fast request (2)", r.cookie, r.data)
		}
		close(release)
		if r := c.readReply(lens); r.cookie != 1 || r.errno != 0 || len(r.data) != 4096 {
			t.Fatalf("second reply cookie %d errno %d", r.cookie, r.errno)
		}
	})
}

func TestMaxInFlight(t *testing.T) {
	dev, started, gate := gatedDevice("read")
	opt := testOptions()
	opt.MaxInFlight = 3
	_, c, _ := transmissionSession(t, dev, opt, true, false)
	var reqs []byte
	for i := range 10 {
		reqs = append(reqs, reqBytes(0, cmdRead, uint64(i), uint64(i)*4096, 4096, nil)...)
	}
	c.write(reqs)
	for range 3 {
		recv(t, started)
	}
	close(gate)
	seen := map[uint64]bool{}
	for range 10 {
		r := c.readReply(nil)
		if r.errno != 0 || seen[r.cookie] {
			t.Fatalf("reply %+v", r)
		}
		seen[r.cookie] = true
	}
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if dev.maxActive != 3 {
		t.Fatalf("%d requests ran at once, want 3", dev.maxActive)
	}
}

func TestBufferBudget(t *testing.T) {
	dev, started, gate := gatedDevice("write")
	opt := testOptions()
	opt.MaxPayload = 64 << 10
	opt.MaxBufferedBytes = 128 << 10 // two payloads
	s, c, errc := transmissionSession(t, dev, opt, false, false)

	var reqs []byte
	for i := range 3 {
		reqs = append(reqs, reqBytes(0, cmdWrite, uint64(i), uint64(i)*(64<<10), 64<<10, pattern(64<<10, byte(i)))...)
	}
	// The third payload is not read until budget frees up, so this write
	// blocks: it runs beside the test.
	wrote := make(chan error, 1)
	go func() {
		_, err := c.nc.Write(reqs)
		wrote <- err
	}()
	recv(t, started)
	recv(t, started)
	if s.sem.TryAcquire(1) {
		t.Fatal("two 64 KiB writes in flight left budget free; want it exhausted")
	}
	close(gate)
	for range 3 {
		if r := c.readReply(nil); r.errno != 0 {
			t.Fatalf("write %d failed: %d", r.cookie, r.errno)
		}
	}
	if err := recv(t, wrote); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dev.bytesAt(128<<10, 64<<10), pattern(64<<10, 2)) {
		t.Fatal("third write not applied")
	}
	// Workers release their budget after replying: wait for the session
	// to end, which waits for them.
	c.send(0, cmdDisc, 9, 0, 0, nil)
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
	if !s.sem.TryAcquire(opt.MaxBufferedBytes) {
		t.Fatal("budget not fully released")
	}
	s.sem.Release(opt.MaxBufferedBytes)
}

func TestDiscFinishesInFlight(t *testing.T) {
	dev, started, gate := gatedDevice("write")
	_, c, errc := transmissionSession(t, dev, testOptions(), true, false)
	c.send(0, cmdWrite, 1, 0, 4, []byte("data"))
	recv(t, started)
	c.send(0, cmdDisc, 2, 0, 0, nil)
	close(gate)
	if r := c.readReply(nil); r.cookie != 1 || r.errno != 0 {
		t.Fatalf("reply %+v", r)
	}
	c.expectClosed()
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
	if string(dev.bytesAt(0, 4)) != "data" {
		t.Fatal("write lost")
	}
}

func TestClientVanishesMidPayload(t *testing.T) {
	dev := newMemDevice(testSize)
	_, c, errc := transmissionSession(t, dev, testOptions(), false, false)
	c.write(reqBytes(0, cmdWrite, 1, 0, 8192, make([]byte, 4096)))
	_ = c.nc.Close()
	if err := waitErr(t, errc); err == nil || !strings.Contains(err.Error(), "payload") {
		t.Fatalf("ServeConn: %v", err)
	}
	if len(dev.opsOf("write")) != 0 {
		t.Fatal("a partial write reached the device")
	}
}

func TestClientVanishesWithWriteInFlight(t *testing.T) {
	dev, started, gate := gatedDevice("write")
	_, c, errc := transmissionSession(t, dev, testOptions(), false, false)
	c.send(cmdFlagFUA, cmdWrite, 1, 4096, 4, []byte("kept"))
	recv(t, started)
	_ = c.nc.Close()
	close(gate)
	waitErr(t, errc)
	// ServeConn returned only after the write finished.
	if string(dev.bytesAt(4096, 4)) != "kept" {
		t.Fatal("in-flight write did not complete before ServeConn returned")
	}
}

func TestWriteTimeoutDropsClient(t *testing.T) {
	opt := testOptions()
	opt.WriteTimeout = 50 * time.Millisecond
	_, c, errc := transmissionSession(t, newMemDevice(testSize), opt, false, false)
	c.send(0, cmdRead, 1, 0, 65536, nil) // and never read the reply
	err := waitErr(t, errc)
	if err == nil || !strings.Contains(err.Error(), "write reply") {
		t.Fatalf("ServeConn: %v", err)
	}
}

func TestServeConnContextCancel(t *testing.T) {
	dev, started, gate := gatedDevice("read")
	s := NewServer(dev, testOptions())
	cs, ss := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.ServeConn(ctx, ss) }()
	c := newRawClient(t, cs)
	c.negotiate(true, false)
	c.send(0, cmdRead, 1, 0, 512, nil)
	recv(t, started)
	cancel()
	close(gate)
	// The request read before the cancel is answered, then the server
	// closes the connection by itself.
	if r := c.readReply(nil); r.cookie != 1 || r.errno != 0 {
		t.Fatalf("reply %+v", r)
	}
	c.expectClosed()
	if err := waitErr(t, errc); err != nil {
		t.Fatalf("ServeConn after cancel: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// tcpServer serves dev on a loopback port; the channel yields Serve's result.
func tcpServer(t testing.TB, dev Device, opt Options) (*Server, string, <-chan error) {
	t.Helper()
	s := NewServer(dev, opt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	return s, ln.Addr().String(), errc
}

func dial(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return newRawClient(t, nc)
}

// noServerGoroutines waits for goroutines of server code to finish exiting
// (Shutdown has returned, so they only have their final instructions left)
// and fails if some remain.
func noServerGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g := serverGoroutines()
		if len(g) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d server goroutines left:\n%s", len(g), strings.Join(g, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShutdownGraceful(t *testing.T) {
	dev, started, gate := gatedDevice("read")
	s, addr, serveErr := tcpServer(t, dev, testOptions())
	c := dial(t, addr)
	c.negotiate(true, false)
	idle := dial(t, addr) // a client still negotiating is dropped
	idle.greet(clientFlagFixedNewstyle)

	c.send(0, cmdRead, 1, 0, 4096, nil)
	recv(t, started)
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// Serve returns once Shutdown has closed the listener and stopped
	// every connection's reader.
	if err := recv(t, serveErr); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	c.send(0, cmdRead, 2, 0, 4096, nil) // not read any more: never answered
	close(gate)
	if r := c.readReply(nil); r.cookie != 1 || r.errno != 0 || len(r.data) != 4096 {
		t.Fatalf("in-flight reply %+v", r)
	}
	c.expectClosed()
	idle.expectClosed()
	if err := recv(t, shut); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	noServerGoroutines(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	cs, ss := net.Pipe()
	defer cs.Close()
	if err := s.ServeConn(context.Background(), ss); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeConn after Shutdown: %v", err)
	}
}

func TestShutdownForced(t *testing.T) {
	dev, started, _ := gatedDevice("read") // the gate never opens
	s, addr, serveErr := tcpServer(t, dev, testOptions())
	c := dial(t, addr)
	c.negotiate(true, false)
	c.send(0, cmdRead, 1, 0, 4096, nil)
	recv(t, started)

	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()
	if err := recv(t, serveErr); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	cancel()
	if err := recv(t, shut); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v", err)
	}
	c.expectClosed()
	// The device saw the cancellation and everything wound down.
	noServerGoroutines(t)
}
