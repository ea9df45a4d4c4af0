package nbd

import (
	"bytes"
	"context"
	"net"
	"testing"
)

// kernelSession starts ServeKernel on one end of a net.Pipe; the client end
// speaks transmission requests at once, as the kernel does.
func kernelSession(t *testing.T, dev Device, flags uint16) (*Server, *rawClient, <-chan error) {
	t.Helper()
	s := NewServer(dev, testOptions())
	cs, ss := net.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- s.ServeKernel(context.Background(), ss, flags) }()
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

func TestKernelFlags(t *testing.T) {
	want := uint16(flagHasFlags | flagSendFlush | flagSendFUA | flagSendTrim | flagSendWriteZeroes |
		flagSendFastZero | flagSendCache | flagCanMultiConn)
	if f := NewServer(newMemDevice(testSize), testOptions()).KernelFlags(); f != want {
		t.Fatalf("KernelFlags %#x, want %#x (no DF: the kernel has no structured replies)", f, want)
	}
	ro := newMemDevice(testSize)
	ro.readOnly = true
	want = flagHasFlags | flagSendFlush | flagSendCache | flagCanMultiConn | flagReadOnly
	if f := NewServer(ro, testOptions()).KernelFlags(); f != want {
		t.Fatalf("read-only KernelFlags %#x, want %#x", f, want)
	}
}

func TestServeKernelSkipsHandshake(t *testing.T) {
	dev := newMemDevice(testSize)
	s := NewServer(dev, testOptions())
	_, c, errc := kernelSession(t, dev, s.KernelFlags())
	// No greeting: the first bytes on the wire are replies to requests,
	// and they are simple replies (the kernel never negotiates others).
	data := bytes.Repeat([]byte{0xa5}, 4096)
	c.expectErrno(cmdFlagFUA, cmdWrite, 8192, 4096, data, 0)
	r := c.expectErrno(0, cmdRead, 8192, 4096, nil, 0)
	if r.structured || !bytes.Equal(r.data, data) {
		t.Fatalf("read back: structured=%v equal=%v", r.structured, bytes.Equal(r.data, data))
	}
	c.expectErrno(0, cmdFlush, 0, 0, nil, 0)
	c.expectErrno(0, cmdTrim, 8192, 4096, nil, 0)
	c.expectErrno(cmdFlagNoHole, cmdWriteZeroes, 0, 4096, nil, 0)
	// Past the end: the export size is the device's.
	c.expectErrno(0, cmdRead, testSize, 512, nil, errInval)
	// Block status needs a negotiated meta context, which the kernel has not.
	c.expectErrno(0, cmdBlockStatus, 0, 512, nil, errInval)
	// NBD_CMD_DISC, sent by the kernel on disconnect, ends it cleanly.
	c.send(0, cmdDisc, 2, 0, 0, nil)
	c.expectClosed()
	if err := waitErr(t, errc); err != nil {
		t.Fatalf("ServeKernel after DISC: %v", err)
	}
}

func TestServeKernelReadOnlyFlags(t *testing.T) {
	// The flags given are the ones enforced: the kernel was told read-only.
	dev := newMemDevice(testSize)
	_, c, errc := kernelSession(t, dev, flagHasFlags|flagReadOnly|flagSendFlush)
	c.expectErrno(0, cmdWrite, 0, 512, make([]byte, 512), errPerm)
	c.expectErrno(0, cmdRead, 0, 512, nil, 0)
	c.send(0, cmdDisc, 2, 0, 0, nil)
	c.expectClosed()
	if err := waitErr(t, errc); err != nil {
		t.Fatalf("ServeKernel after DISC: %v", err)
	}
}

func TestServeKernelAfterShutdown(t *testing.T) {
	s := NewServer(newMemDevice(testSize), testOptions())
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs, ss := net.Pipe()
	defer cs.Close()
	if err := s.ServeKernel(context.Background(), ss, s.KernelFlags()); err != ErrServerClosed {
		t.Fatalf("ServeKernel after Shutdown: %v, want ErrServerClosed", err)
	}
}
