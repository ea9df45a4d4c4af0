package nbddev

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestResolveNotABlockDevice(t *testing.T) {
	_, err := resolve(context.Background(), "/dev/null")
	if err == nil || !strings.Contains(err.Error(), "not a block device") {
		t.Fatalf("resolve(/dev/null): %v", err)
	}
	f := filepath.Join(t.TempDir(), "nbd0")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolve(context.Background(), f); err == nil || !strings.Contains(err.Error(), "not a block device") {
		t.Fatalf("resolve(regular file): %v", err)
	}
}

func TestResolveMissingLoadsModule(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "modprobe.log")
	// A stand-in for modprobe that records its call and fails noisily,
	// over several lines as modprobe does.
	old := modprobe
	modprobe = []string{"sh", "-c", `echo "$0 $1" > ` + log + `; printf 'modprobe: FATAL: Module nbd not found\nin directory /lib/modules/x\n' >&2; exit 1`, "modprobe", "nbd"}
	t.Cleanup(func() { modprobe = old })

	_, err := resolve(context.Background(), filepath.Join(dir, "nbd7"))
	if err == nil {
		t.Fatal("resolve of a missing device succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"nbd7 does not exist", "loading the nbd module failed", "Module nbd not found in directory"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q spans several lines", msg)
	}
	if b, _ := os.ReadFile(log); strings.TrimSpace(string(b)) != "modprobe nbd" {
		t.Errorf("modprobe ran as %q", b)
	}
}

func TestResolveOtherBlockDevice(t *testing.T) {
	// A loop device node (major 7) made here: a block device, not NBD.
	if _, err := os.Stat("/sys/dev/block/7:0"); err != nil {
		t.Skip("no loop device driver here")
	}
	p := filepath.Join(t.TempDir(), "nbd0") // the name must not fool it
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))); err != nil {
		t.Skipf("cannot create a device node (needs root): %v", err)
	}
	_, err := resolve(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "not an NBD device (it is loop0") {
		t.Fatalf("resolve(loop node): %v", err)
	}
}

// fakeSysBlock points sysBlock at a directory holding nbd0/pid with the
// given content ("" = no pid file: not attached).
func fakeSysBlock(t *testing.T, pid string) node {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "nbd0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if pid != "" {
		if err := os.WriteFile(filepath.Join(dir, "nbd0", "pid"), []byte(pid+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := sysBlock
	sysBlock = dir
	t.Cleanup(func() { sysBlock = old })
	return node{path: "/dev/nbd0", name: "nbd0", index: 0}
}

func TestCheckFree(t *testing.T) {
	n := fakeSysBlock(t, "")
	if err := checkFree(n); err != nil {
		t.Fatalf("unattached: %v", err)
	}

	n = fakeSysBlock(t, strconv.Itoa(os.Getpid()))
	err := checkFree(n)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "attached by process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("attached by a live process: %v", err)
	}

	// Above any pid_max: no such process.
	n = fakeSysBlock(t, "2147483647")
	err = checkFree(n)
	var stale staleError
	if inInitPIDNamespace() {
		if !errors.As(err, &stale) || stale.pid != 2147483647 {
			t.Fatalf("attached by a dead process: %v, want a stale attachment", err)
		}
	} else if !errors.Is(err, ErrInUse) {
		// In a PID namespace a pid we cannot see may be alive elsewhere.
		t.Fatalf("attached by an unseen process in a PID namespace: %v, want ErrInUse", err)
	}

	n = fakeSysBlock(t, "garbage")
	if err := checkFree(n); err == nil {
		t.Fatal("unreadable pid file accepted")
	}
}
