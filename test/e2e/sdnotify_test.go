package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket stands in for systemd's $NOTIFY_SOCKET.
func notifySocket(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return path, c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

// Under a Type=notify unit the daemonizing command tells systemd the
// server is ready, naming the background process as the main one.
func TestSdNotifyDaemon(t *testing.T) {
	path, c := notifySocket(t)
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	cmd := exec.Command(bin, "--nbd", "--test", "--size=1M", t.TempDir(), "nbd+unix:///?socket="+sock)
	cmd.Env = append(testEnv(t), "NOTIFY_SOCKET="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("daemon start: %v\n%s", err, out)
	}
	pid := findProcess(t, sock)
	if pid == 0 {
		t.Fatal("no background s3backer process")
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if got, want := readNotify(t, c), fmt.Sprintf("MAINPID=%d\nREADY=1", pid); got != want {
		t.Fatalf("notification %q, want %q", got, want)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, c); got != "STOPPING=1" {
		t.Fatalf("after SIGTERM: %q, want STOPPING=1", got)
	}
	waitFor(t, "the daemon to exit", 30*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
}

// In the foreground (-f) the process itself is the unit's main process.
func TestSdNotifyForeground(t *testing.T) {
	path, c := notifySocket(t)
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	cmd := exec.Command(bin, "--nbd", "-f", "--test", "--size=1M", t.TempDir(), "nbd+unix:///?socket="+sock)
	cmd.Env = append(testEnv(t), "NOTIFY_SOCKET="+path)
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if got := readNotify(t, c); got != "READY=1" {
		t.Fatalf("notification %q, want READY=1\n%s", got, out.String())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if got := readNotify(t, c); got != "STOPPING=1" {
		t.Fatalf("after SIGTERM: %q, want STOPPING=1", got)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, out.String())
	}
}
