package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// memoryNBDKit runs `nbdkit memory SIZE` on a unix socket and returns it
// once it listens.
func memoryNBDKit(t *testing.T, size string) string {
	t.Helper()
	if _, err := exec.LookPath("nbdkit"); err != nil {
		t.Skip("nbdkit not installed (scripts/install-test-deps.sh installs it)")
	}
	dir := t.TempDir()
	sock, pidfile := filepath.Join(dir, "sock"), filepath.Join(dir, "pid")
	cmd := exec.Command("nbdkit", "-f", "-U", sock, "-P", pidfile, "memory", size)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for {
		if _, err := os.Stat(pidfile); err == nil {
			return sock
		}
		select {
		case err := <-exited:
			t.Fatalf("nbdkit exited: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestNBDHandshake(t *testing.T) {
	sock := memoryNBDKit(t, "1M")
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exp, err := nbdHandshake(c)
	if err != nil {
		t.Fatal(err)
	}
	const hasFlags, readOnly, multiConn = 1 << 0, 1 << 1, 1 << 8
	if exp.size != 1<<20 || exp.flags&hasFlags == 0 || exp.flags&readOnly != 0 || exp.flags&multiConn == 0 {
		t.Errorf("export %+v", exp)
	}
	// Without structured replies nbdkit must not offer DF.
	if exp.flags&nbdFlagSendDF != 0 {
		t.Errorf("flags %#x include DF", exp.flags)
	}
	if err := nbdDisconnect(c); err != nil {
		t.Fatal(err)
	}
	// nbdkit closes the connection after NBD_CMD_DISC.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after disconnect: %d bytes, %v", n, err)
	}

	// Not an NBD server.
	a, b := net.Pipe()
	go func() { _, _ = b.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")); b.Close() }()
	if _, err := nbdHandshake(a); err == nil || !strings.Contains(err.Error(), "NBD handshake") {
		t.Errorf("garbage server: %v", err)
	}
}

// The kernel's side of a relayed connection speaks the transmission
// phase at once, as the kernel does.
func TestRelayNBD(t *testing.T) {
	sock := memoryNBDKit(t, "1M")
	kernel, ours := net.Pipe()
	relayed := make(chan error, 1)
	go func() { relayed <- relayNBD(context.Background(), ours, "unix", sock) }()

	request := func(typ uint16, cookie uint64, off uint64, length uint32, payload []byte) {
		t.Helper()
		req := binary.BigEndian.AppendUint32(nil, nbdReqMagic)
		req = binary.BigEndian.AppendUint16(req, 0)
		req = binary.BigEndian.AppendUint16(req, typ)
		req = binary.BigEndian.AppendUint64(req, cookie)
		req = binary.BigEndian.AppendUint64(req, off)
		req = binary.BigEndian.AppendUint32(req, length)
		if _, err := kernel.Write(append(req, payload...)); err != nil {
			t.Fatal(err)
		}
	}
	reply := func(cookie uint64, n int) []byte {
		t.Helper()
		buf := make([]byte, 16+n)
		if _, err := io.ReadFull(kernel, buf); err != nil {
			t.Fatal(err)
		}
		if binary.BigEndian.Uint32(buf) != 0x67446698 || binary.BigEndian.Uint32(buf[4:]) != 0 || binary.BigEndian.Uint64(buf[8:]) != cookie {
			t.Fatalf("reply header % x", buf[:16])
		}
		return buf[16:]
	}
	data := bytes.Repeat([]byte("s3backer"), 512)
	request(1, 7, 8192, uint32(len(data)), data) // NBD_CMD_WRITE
	reply(7, 0)
	request(0, 8, 8192, uint32(len(data)), nil) // NBD_CMD_READ
	if got := reply(8, len(data)); !bytes.Equal(got, data) {
		t.Error("read back differs")
	}
	request(nbdCmdDisc, 9, 0, 0, nil)
	select {
	case err := <-relayed:
		if err != nil {
			t.Errorf("relay: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not end after NBD_CMD_DISC")
	}
}

func TestCheckPlugin(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, pluginFile)
	if _, err := checkPlugin(plugin); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing: %v", err)
	}
	if err := os.WriteFile(plugin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := checkPlugin(plugin); err == nil || !strings.Contains(err.Error(), pluginLibrary+" is missing beside it") {
		t.Errorf("no library: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, pluginLibrary), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := checkPlugin(plugin); err != nil || p != plugin {
		t.Errorf("complete: %q, %v", p, err)
	}
}
