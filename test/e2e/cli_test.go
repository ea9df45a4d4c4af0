package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bad command lines exit non-zero with one clear line naming the problem.
func TestCommandLineErrors(t *testing.T) {
	dir := t.TempDir()
	sock := "nbd+unix:///?socket=" + filepath.Join(t.TempDir(), "s")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--nbd", "--test", "--size=1x", dir, sock}, "size"},
		{[]string{"--nbd", "--test", "--size=1M", "--blockSize=3k", dir, sock}, "power of two"},
		{[]string{"--nbd", "--test", "--size=64T", "--blockSize=512", dir, sock}, "2^32"},
		{[]string{"--nbd", "--test", "--size=1M", "--fooBar", dir, sock}, "fooBar"},
		{[]string{"--nbd", "--test", "--size=1M", dir}, "missing"},
		{[]string{"--nbd", "--test", "--size=1M", "--blockCacheFile=" + filepath.Join(dir, "nodir", "cache"), dir, sock}, "nodir"},
		{[]string{"--nbd", "--test", dir, sock}, "size"},
		{[]string{"--nbd", "--test", "--size=1M", filepath.Join(dir, "nope"), sock}, "nope"},
		{[]string{"--nbd", "--test", "--size=1M", dir, "ftp://x"}, "ftp://x"},
		{[]string{"--nbd", "--test", "--size=1M", dir, "/dev/null"}, "not a block device"},
		// Endpoints on loopback only: a refused connection, a clear line.
		{[]string{"--nbd", "--size=1M", "--baseURL=http://127.0.0.1:1/", "--accessId=a", "--accessKey=b", "mybucket", sock}, "cannot reach"},
		{[]string{"--nbd", "--size=1M", "--baseURL=ftp://127.0.0.1/", "mybucket", sock}, "baseURL"},
		{[]string{"--nbd", "--size=1M", "--authVersion=aws2", "--baseURL=http://127.0.0.1:1/", "mybucket", sock}, "aws2"},
		{[]string{"--test", "--size=1M", dir, filepath.Join(dir, "nomount")}, "nomount"},
	}
	for _, c := range cases {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = testEnv(t)
		out, err := cmd.CombinedOutput()
		msg := strings.TrimSpace(string(out))
		if err == nil {
			t.Errorf("%v: exit 0, want failure (%s)", c.args, msg)
			continue
		}
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, c.want) {
			t.Errorf("%v: message %q, want one line mentioning %q", c.args, msg, c.want)
		}
		if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine") {
			t.Errorf("%v: crashed: %s", c.args, msg)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, a := range [][]string{{"--help"}, {"-h"}, {"--version"}} {
		out, err := exec.Command(bin, a...).CombinedOutput()
		if err != nil || len(out) == 0 {
			t.Errorf("%v: %v %q", a, err, out)
		}
	}
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	for _, flag := range []string{"--blockSize", "--size", "--test", "--nbd", "--listBlocks", "--encrypt"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("--help does not mention %s", flag)
		}
	}
}

// findProcess returns the pid of the s3backer process whose command line
// contains marker (a daemon is not our child).
func findProcess(t *testing.T, marker string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), marker) && strings.Contains(string(cmdline), "--nbd") {
			return pid
		}
	}
	return 0
}

// Without -f the command returns only once the disk is served, and the
// background process stops cleanly on SIGTERM.
func TestDaemonMode(t *testing.T) {
	need(t, "nbdsh")
	dir := t.TempDir()
	sockPath := filepath.Join(t.TempDir(), "daemon.sock")
	uri := "nbd+unix:///?socket=" + sockPath
	out, err := exec.Command(bin, "--nbd", "--test", "--size=4M", "--blockSize=4k", dir, uri).CombinedOutput()
	if err != nil {
		t.Fatalf("daemon start: %v\n%s", err, out)
	}
	pid := findProcess(t, sockPath)
	if pid == 0 {
		t.Fatal("no background s3backer process")
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// Serving already: no waiting needed.
	run(t, "nbdsh", "-u", uri, "-c", `h.pwrite(b"daemon"*100, 4000, nbd.CMD_FLAG_FUA)`)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon to exit", 30*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	if _, err := os.Stat(sockPath); err == nil {
		t.Error("socket left behind after a clean stop")
	}
	if n := len(blockFiles(t, dir)); n != 2 {
		t.Fatalf("%d block files after a 600-byte write across a boundary, want 2", n)
	}
}

// The daemon holds the cache file (as the guide's Type=forking unit runs
// it with --blockCacheFile): a second instance is refused while it runs,
// and the next daemon finds the blocks it left.
func TestDaemonCacheFile(t *testing.T) {
	need(t, "nbdsh")
	dir, cache := t.TempDir(), filepath.Join(t.TempDir(), "cache")
	args := func(sock string) []string {
		return []string{"--nbd", "--test", "--size=4M", "--blockSize=4k", "--blockCacheFile=" + cache,
			"--blockCacheWriteDelay=60000", dir, "nbd+unix:///?socket=" + sock}
	}
	daemon := func() (pid int, uri string) {
		t.Helper()
		sock := filepath.Join(t.TempDir(), "daemon.sock")
		if out, err := exec.Command(bin, args(sock)...).CombinedOutput(); err != nil {
			t.Fatalf("daemon start: %v\n%s", err, out)
		}
		pid = findProcess(t, sock)
		if pid == 0 {
			t.Fatal("no background s3backer process")
		}
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		return pid, "nbd+unix:///?socket=" + sock
	}
	stop := func(pid int) {
		t.Helper()
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the daemon to exit", 30*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	}

	pid, uri := daemon()
	run(t, "nbdsh", "-u", uri, "-c", `h.pwrite(b"cached"*100, 8192)`) // dirty in the cache file
	out, err := exec.Command(bin, args(filepath.Join(t.TempDir(), "second.sock"))...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("a second instance on the daemon's cache file: %v\n%s", err, out)
	}
	stop(pid)
	pid, uri = daemon()
	if got := run(t, "nbdsh", "-u", uri, "-c", `print(h.pread(600, 8192) == b"cached"*100)`); strings.TrimSpace(got) != "True" {
		t.Fatalf("the next daemon reads %q", got)
	}
	stop(pid)
}

// A daemon that cannot start makes the command fail with the reason.
func TestDaemonStartFailure(t *testing.T) {
	busy := filepath.Join(t.TempDir(), "busy.sock")
	// A regular file where the socket should go.
	if err := os.WriteFile(busy, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--nbd", "--test", "--size=4M", t.TempDir(), "nbd+unix:///?socket="+busy).CombinedOutput()
	if err == nil {
		t.Fatalf("start on an unusable socket path succeeded: %s", out)
	}
	if !strings.Contains(string(out), busy) {
		t.Fatalf("failure message does not name the socket: %s", out)
	}
}
