package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	sent, err := Notify("READY=1")
	if sent || err != nil {
		t.Fatalf("Notify without NOTIFY_SOCKET = %v, %v; want false, nil", sent, err)
	}
}

// listen is a stand-in for systemd's notification socket.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

func TestNotify(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		"@s3backer-sdnotify-test-" + time.Now().Format("150405.000000000"), // abstract, as systemd uses
	} {
		c := listen(t, name)
		t.Setenv("NOTIFY_SOCKET", name)
		sent, err := Notify("READY=1\nMAINPID=42")
		if !sent || err != nil {
			t.Fatalf("%s: Notify = %v, %v", name, sent, err)
		}
		buf := make([]byte, 128)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != "READY=1\nMAINPID=42" {
			t.Fatalf("%s: got %q", name, got)
		}
	}
}

func TestNotifyNoListener(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if sent, err := Notify("READY=1"); !sent || err == nil {
		t.Fatalf("Notify to a missing socket = %v, %v; want true and an error", sent, err)
	}
}
