package nbddev

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/s3backer-go/s3backer/internal/nbd"
)

// These tests attach a real kernel NBD device. This machine's kernel may
// have no nbd driver, and attaching must never touch a device in use, so
// they run only when NBDDEV_TEST_DEVICE names a free one (as root); test/vm
// runs them inside a VM.
const testDeviceEnv = "NBDDEV_TEST_DEVICE"

func testDevice(t *testing.T) string {
	t.Helper()
	p := os.Getenv(testDeviceEnv)
	if p == "" {
		t.Skipf("set %s=/dev/nbdN (a free device; root) to attach a real kernel device; test/vm does so in a VM", testDeviceEnv)
	}
	return p
}

const (
	kernelTestSize = 16 << 20
	testWait       = 20 * time.Second
)

// attachMem attaches a fresh memory device with method m.
func attachMem(t *testing.T, path string, m Method, conns int) (*Device, *memDevice, *nbd.Server) {
	t.Helper()
	dev := newMemDevice(kernelTestSize)
	srv := nbd.NewServer(dev, nbd.Options{})
	flags := srv.KernelFlags()
	d, err := Attach(context.Background(), path, func(ctx context.Context, nc net.Conn) error {
		return srv.ServeKernel(ctx, nc, flags)
	}, Options{Size: kernelTestSize, Flags: flags, Connections: conns, Method: m, Backend: "nbddev test"})
	if err != nil {
		t.Fatalf("attach with %v: %v", m, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		_ = d.Detach(ctx)
		_ = srv.Shutdown(ctx)
	})
	return d, dev, srv
}

// alignedBuf is page-aligned memory for O_DIRECT.
func alignedBuf(t *testing.T, n int) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

func sysfsInt(t *testing.T, n node, file string) (int64, bool) {
	t.Helper()
	b, err := os.ReadFile(n.sysfs(file))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

func TestKernelAttachNetlink(t *testing.T) { testKernelAttach(t, Netlink) }
func TestKernelAttachIoctl(t *testing.T)   { testKernelAttach(t, Ioctl) }

func testKernelAttach(t *testing.T, m Method) {
	path := testDevice(t)
	d, dev, _ := attachMem(t, path, m, 2)
	if d.Method() != m {
		t.Fatalf("method %v, want %v", d.Method(), m)
	}
	n := d.node
	if sectors, _ := sysfsInt(t, n, "size"); sectors*512 != kernelTestSize {
		t.Fatalf("kernel size %d sectors, want %d", sectors, kernelTestSize/512)
	}
	// The kernel records the attaching thread; it must be one of ours.
	tid, ok := sysfsInt(t, n, "pid")
	if !ok {
		t.Fatal("no pid file while attached")
	}
	if got := describeProcess(int(tid)); !strings.HasPrefix(got, "process "+strconv.Itoa(os.Getpid())+",") {
		t.Fatalf("kernel owner thread %d belongs to %s, want our process %d", tid, got, os.Getpid())
	}

	// Writes through the device reach the server.
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := alignedBuf(t, 64<<10)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	if _, err := f.WriteAt(buf, 1<<20); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if !bytes.Equal(dev.snapshot(1<<20, int64(len(buf))), buf) {
		t.Fatal("the server did not get the data written to the device")
	}
	dev.mu.Lock()
	flushes := dev.flushes
	dev.mu.Unlock()
	if flushes == 0 {
		t.Error("fsync sent no flush (NBD_FLAG_SEND_FLUSH)")
	}

	// Reads come from the server.
	_ = dev.WriteAt(context.Background(), bytes.Repeat([]byte{0x5a}, 4096), 4<<20, false)
	rb := alignedBuf(t, 4096)
	if _, err := f.ReadAt(rb, 4<<20); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(rb, bytes.Repeat([]byte{0x5a}, 4096)) {
		t.Fatal("read through the device differs from the server's data")
	}

	// Discards arrive as trims (NBD_FLAG_SEND_TRIM).
	rng := [2]uint64{1 << 20, 64 << 10}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&rng))); e != 0 {
		t.Fatalf("BLKDISCARD: %v", e)
	}
	dev.mu.Lock()
	trims := len(dev.trims)
	dev.mu.Unlock()
	if trims == 0 {
		t.Fatal("a discard reached the server as no trim")
	}
	if !bytes.Equal(dev.snapshot(1<<20, 64<<10), make([]byte, 64<<10)) {
		t.Fatal("trimmed range still holds data")
	}
	f.Close()

	// The device is refused to anyone else while attached.
	if err := Check(context.Background(), path); !errors.Is(err, ErrInUse) {
		t.Fatalf("Check on an attached device: %v, want ErrInUse", err)
	}
	_, err = Attach(context.Background(), path, func(context.Context, net.Conn) error { return nil },
		Options{Size: kernelTestSize, Flags: nbd.NewServer(dev, nbd.Options{}).KernelFlags(), Method: m})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second attach: %v, want ErrInUse", err)
	}

	// A clean detach leaves the device free.
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := d.Detach(ctx); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if _, ok := sysfsInt(t, n, "pid"); ok {
		t.Fatal("pid file still there after detach")
	}
	if sectors, _ := sysfsInt(t, n, "size"); sectors != 0 {
		t.Fatalf("size %d sectors after detach, want 0", sectors)
	}
	select {
	case <-d.Done():
	default:
		t.Fatal("Done not closed after Detach")
	}
	if err := Check(context.Background(), path); err != nil {
		t.Fatalf("Check after detach: %v", err)
	}
}

// Someone else detaching the device (nbd-client -d) ends the attachment:
// Done closes, and Detach then only tidies up.
func TestKernelExternalDetachNetlink(t *testing.T) { testExternalDetach(t, Netlink) }
func TestKernelExternalDetachIoctl(t *testing.T)   { testExternalDetach(t, Ioctl) }

func testExternalDetach(t *testing.T, m Method) {
	path := testDevice(t)
	d, _, _ := attachMem(t, path, m, 1)
	if m == Netlink {
		nl, err := dialNetlink()
		if err != nil {
			t.Fatal(err)
		}
		if err := nl.disconnect(context.Background(), d.node.index); err != nil {
			t.Fatalf("netlink disconnect: %v", err)
		}
	} else {
		// What nbd-client -d does.
		fd, err := unix.Open(path, unix.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = ioctl(fd, ioctlDisconnect, 0, "NBD_DISCONNECT")
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-d.Done():
		t.Logf("attachment ended: %v", d.Err())
	case <-time.After(testWait):
		t.Fatal("Done not closed after an external disconnect")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := d.Detach(ctx); err != nil {
		t.Fatalf("detach after an external disconnect: %v", err)
	}
	if err := Check(context.Background(), path); err != nil {
		t.Fatalf("Check after detach: %v", err)
	}
}
