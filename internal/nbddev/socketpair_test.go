package nbddev

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/nbd"
)

// The kernel's end of a pair, driven by hand as the kernel would: requests
// in the transmission phase at once, simple replies back.
func TestPairServesKernelEnd(t *testing.T) {
	dev := newMemDevice(1 << 20)
	srv := nbd.NewServer(dev, nbd.Options{})
	p, err := newPair()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeKernel(context.Background(), p.server, srv.KernelFlags()) }()
	k := os.NewFile(uintptr(p.kernel), "kernel-end")
	defer k.Close()
	_ = k.SetDeadline(time.Now().Add(20 * time.Second))

	be := binary.BigEndian
	req := func(typ uint16, cookie, off uint64, length uint32, payload []byte) {
		b := be.AppendUint32(nil, 0x25609513)
		b = be.AppendUint16(b, 0)
		b = be.AppendUint16(b, typ)
		b = be.AppendUint64(b, cookie)
		b = be.AppendUint64(b, off)
		b = be.AppendUint32(b, length)
		if _, err := k.Write(append(b, payload...)); err != nil {
			t.Fatal(err)
		}
	}
	reply := func(cookie uint64, n int) []byte {
		h := make([]byte, 16+n)
		if _, err := io.ReadFull(k, h); err != nil {
			t.Fatal(err)
		}
		if be.Uint32(h) != 0x67446698 || be.Uint32(h[4:]) != 0 || be.Uint64(h[8:]) != cookie {
			t.Fatalf("reply % x", h[:16])
		}
		return h[16:]
	}
	data := bytes.Repeat([]byte("s3backer"), 512)
	req(1, 7, 4096, uint32(len(data)), data) // NBD_CMD_WRITE
	reply(7, 0)
	req(0, 8, 4096, uint32(len(data)), nil) // NBD_CMD_READ
	if got := reply(8, len(data)); !bytes.Equal(got, data) {
		t.Fatal("read back different data")
	}

	// Shutdown must end the session promptly: our end supports the read
	// deadline that interrupts the server's blocked read.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("ServeKernel: %v", err)
	}
	if n, err := k.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("kernel end after shutdown: %d, %v; want EOF", n, err)
	}
}
