package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/testenv/lockedbuf"
	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// The nbdkit plugin under test: $S3BACKER_PLUGIN (set by `make test`), or
// one built once per run into a fixed directory (rebuilt each run, so it
// is never stale, and never piles up).
var pluginOnce struct {
	sync.Once
	path string
	err  error
}

// needPlugin returns the plugin's path, building it if needed, and makes
// the s3backer binary find it too.
func needPlugin(t *testing.T) string {
	t.Helper()
	need(t, "nbdkit", "nbdinfo", "nbdcopy")
	pluginOnce.Do(func() {
		if p := os.Getenv("S3BACKER_PLUGIN"); p != "" {
			pluginOnce.path = p
			return
		}
		if _, err := os.Stat("/usr/include/nbdkit-plugin.h"); err != nil {
			pluginOnce.err = err
			return
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("s3backer-e2e-plugin-%d", os.Getuid()))
		out, err := exec.Command("../../nbdkit/build.sh", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("building the plugin: %v\n%s", err, out)
		}
		pluginOnce.path = filepath.Join(dir, "nbdkit-s3backer-plugin.so")
		os.Setenv("S3BACKER_PLUGIN", pluginOnce.path)
	})
	if pluginOnce.err != nil {
		t.Skipf("nbdkit-plugin-dev not installed (scripts/install-test-deps.sh installs it): %v", pluginOnce.err)
	}
	if pluginOnce.path == "" {
		t.Fatal("the plugin failed to build in an earlier test")
	}
	return pluginOnce.path
}

// nbdkitServer is one `nbdkit -f PLUGIN PARAMS` on a unix socket.
type nbdkitServer struct {
	*proc
	URI string
}

// startNBDKit runs nbdkit in the foreground with our plugin and waits
// until it serves (its pidfile is written once it listens; the first
// request then waits for the plugin to open the disk).
func startNBDKit(t *testing.T, params ...string) *nbdkitServer {
	t.Helper()
	dir := t.TempDir()
	sock, pidfile := filepath.Join(dir, "nbd.sock"), filepath.Join(dir, "pid")
	args := append([]string{"-f", "-U", sock, "-P", pidfile, needPlugin(t)}, params...)
	cmd := exec.Command("nbdkit", args...)
	cmd.Env = testEnv(t)
	p, err := startProc(t, cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &nbdkitServer{proc: p, URI: "nbd+unix:///?socket=" + sock}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(pidfile); err == nil {
			break
		}
		select {
		case err := <-s.done:
			t.Fatalf("nbdkit exited at start (%v):\n%s", err, s.logText())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nbdkit did not start:\n%s", s.logText())
		}
	}
	return s
}

// stop sends SIGTERM and requires a clean exit (the plugin flushed and
// cleared the 'already mounted' flag).
func (s *nbdkitServer) stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	s.exited(syscall.SIGTERM.String())
}

// nbdinfoJSON is the part of `nbdinfo --json` the tests look at.
type nbdinfoJSON struct {
	Exports []struct {
		Contexts      []string `json:"contexts"`
		ReadOnly      bool     `json:"is_read_only"`
		CanFlush      bool     `json:"can_flush"`
		CanTrim       bool     `json:"can_trim"`
		CanZero       bool     `json:"can_zero"`
		CanFastZero   bool     `json:"can_fast_zero"`
		CanFUA        bool     `json:"can_fua"`
		CanMultiConn  bool     `json:"can_multi_conn"`
		CanCache      bool     `json:"can_cache"`
		BlockMin      int64    `json:"block_size_minimum"`
		BlockPref     int64    `json:"block_size_preferred"`
		Size          int64    `json:"export-size"`
		ExportContent string   `json:"content"`
	} `json:"exports"`
}

func nbdinfo(t *testing.T, uri string) nbdinfoJSON {
	t.Helper()
	var info nbdinfoJSON
	if err := json.Unmarshal([]byte(run(t, "nbdinfo", "--json", uri)), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Exports) != 1 {
		t.Fatalf("nbdinfo: %d exports", len(info.Exports))
	}
	return info
}

// checkFlags requires what a writable s3backer disk announces.
func checkFlags(t *testing.T, uri string, size, blockSize int64) {
	t.Helper()
	e := nbdinfo(t, uri).Exports[0]
	if e.ReadOnly || !e.CanFlush || !e.CanTrim || !e.CanZero || !e.CanFastZero || !e.CanFUA || !e.CanMultiConn || !e.CanCache {
		t.Errorf("flags: %+v", e)
	}
	if !slices.Contains(e.Contexts, "base:allocation") {
		t.Errorf("contexts %q, want base:allocation", e.Contexts)
	}
	if e.Size != size || e.BlockMin != 1 || e.BlockPref != blockSize {
		t.Errorf("size %d, block sizes %d/%d; want %d, 1/%d", e.Size, e.BlockMin, e.BlockPref, size, blockSize)
	}
}

// mapOf is `nbdinfo --map` as (offset, length, type) lines.
func mapOf(t *testing.T, uri string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(run(t, "nbdinfo", "--map", uri)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("nbdinfo --map line %q", line)
		}
		out = append(out, strings.Join(f[:3], " "))
	}
	return out
}

// roundTrip writes a random image with nbdcopy and reads it back.
func roundTrip(t *testing.T, uri string, size int) []byte {
	t.Helper()
	in, _ := randomFile(t, size)
	run(t, "nbdcopy", "--flush", in, uri)
	return readBack(t, uri, in)
}

// readBack requires the disk at uri to hold the file want.
func readBack(t *testing.T, uri, want string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.img")
	run(t, "nbdcopy", uri, out)
	got, _ := os.ReadFile(out)
	data, _ := os.ReadFile(want)
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes differing from the %d written", len(got), len(data))
	}
	return data
}

// The plugin on a --test directory: flags, allocation map, data round
// trip, trim; a clean stop.
func TestPluginTestDir(t *testing.T) {
	const size, bs = 8 << 20, 64 << 10
	dir := t.TempDir()
	s := startNBDKit(t, "test=true", "size=8m", "s3b_blockSize=64k", "bucket="+dir)
	checkFlags(t, s.URI, size, bs)
	if got := mapOf(t, s.URI); !slices.Equal(got, []string{"0 8388608 3"}) {
		t.Errorf("map of an empty disk %q, want one hole", got)
	}
	roundTrip(t, s.URI, size)
	// randomFile zeroes [1 MiB, 3 MiB): those blocks are holes.
	want := []string{"0 1048576 0", "1048576 2097152 3", "3145728 5242880 0"}
	if got := mapOf(t, s.URI); !slices.Equal(got, want) {
		t.Errorf("map %q, want %q", got, want)
	}
	nblocks := len(blockFiles(t, dir))
	if nblocks != size/bs-2<<20/bs {
		t.Errorf("%d block files, want %d", nblocks, size/bs-2<<20/bs)
	}
	// Trimming deletes whole blocks.
	run(t, "nbdsh", "-u", s.URI, "-c", "h.trim(4 << 20, 4 << 20); h.flush()")
	if n := len(blockFiles(t, dir)); n != nblocks-4<<20/bs {
		t.Errorf("after trimming 4 MiB: %d block files, want %d", n, nblocks-4<<20/bs)
	}
	s.stop()

	// readOnly=true: announced, and a write is refused.
	s = startNBDKit(t, "test=true", "size=8m", "s3b_blockSize=64k", "readOnly=true", "bucket="+dir)
	if e := nbdinfo(t, s.URI).Exports[0]; !e.ReadOnly {
		t.Errorf("readOnly=true: %+v", e)
	}
	if out, err := runOut("nbdsh", "-u", s.URI, "-c", "h.pwrite(b'x' * 512, 0)"); err == nil {
		t.Errorf("a write to a read-only disk succeeded: %s", out)
	}
	s.stop()
}

// nbdkit daemonizes (forks) by default: the Go half of the plugin must
// start after that, or it hangs at its first garbage collection.
func TestPluginDaemonized(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	pidfile := filepath.Join(t.TempDir(), "pid")
	// Relative paths mean nbdkit's working directory, although nbdkit
	// moves to / when it daemonizes: the --test directory here.
	if err := os.Mkdir(filepath.Join(dir, "disk"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The plugin too, by a relative path.
	plugin, err := filepath.Rel(dir, needPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nbdkit", "-U", sock, "-P", pidfile, plugin, "test=true", "size=32m", "blockSize=64k", "bucket=disk")
	cmd.Dir = dir
	cmd.Env = testEnv(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nbdkit: %v\n%s", err, out)
	}
	// The background nbdkit writes its pidfile once it listens.
	var pid int
	waitFor(t, "nbdkit's pidfile", 30*time.Second, func() bool {
		b, _ := os.ReadFile(pidfile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	uri := "nbd+unix:///?socket=" + sock
	// Enough data for several garbage collections in the daemon.
	for range 3 {
		roundTrip(t, uri, 32<<20)
	}
	if len(blockFiles(t, filepath.Join(dir, "disk"))) == 0 {
		t.Error("no block files in the relative --test directory")
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemonized nbdkit to exit", 60*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
}

// Bad parameters stop nbdkit at start with s3backer's own message.
func TestPluginBadParams(t *testing.T) {
	plugin := needPlugin(t)
	dir := t.TempDir()
	for _, c := range []struct {
		params []string
		want   string
	}{
		{[]string{"test=true", "size=1m", "s3b_blokSize=4k", "bucket=" + dir}, `unknown s3backer parameter "s3b_blokSize"; did you mean s3b_blockSize?`},
		{[]string{"test=true", "size=1q", "bucket=" + dir}, `--size=1q: invalid size "1q"`},
		{[]string{"size=1g"}, "missing bucket"},
		{[]string{"readOnly=maybe", "bucket=b"}, "readOnly=maybe: boolean parameter, want true or false"},
		{[]string{"s3b_erase=true", "bucket=b"}, "not allowed in the nbdkit plugin"},
	} {
		cmd := exec.Command("nbdkit", append([]string{"-f", "-U", filepath.Join(t.TempDir(), "s"), plugin}, c.params...)...)
		cmd.Env = testEnv(t)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%q: nbdkit started", c.params)
			continue
		}
		if !strings.Contains(string(out), "nbdkit: error: s3backer: ") || !strings.Contains(string(out), c.want) {
			t.Errorf("%q: output %q, want %q", c.params, out, c.want)
		}
	}
}

// The plugin on a versitygw bucket: data written by the plugin reads back
// through our NBD server and the reverse, and each clean stop clears the
// 'already mounted' flag.
func TestPluginS3(t *testing.T) {
	needPlugin(t)
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	params := []string{"baseURL=" + gw.URL, "accessId=" + gw.AccessKey, "s3b_accessKey=" + gw.SecretKey,
		"size=8m", "blockSize=64k", "bucket=" + bucket + "/disk"}
	flagKey := "disk/s3backer-mounted"

	s := startNBDKit(t, params...)
	checkFlags(t, s.URI, 8<<20, 64<<10)
	written := filepath.Join(t.TempDir(), "plugin.img")
	data := roundTrip(t, s.URI, 8<<20)
	if err := os.WriteFile(written, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(bucketKeys(t, gw, bucket), flagKey) {
		t.Error("no 'already mounted' flag while the plugin serves")
	}
	// A second instance is refused while the first serves.
	cmd := exec.Command("nbdkit", append([]string{"-f", "-U", filepath.Join(t.TempDir(), "s"), needPlugin(t)}, params...)...)
	cmd.Env = testEnv(t)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "already mounted") {
		t.Errorf("second plugin instance: %v\n%s", err, out)
	}
	s.stop()
	if slices.Contains(bucketKeys(t, gw, bucket), flagKey) {
		t.Fatal("the 'already mounted' flag is left after a clean stop")
	}

	// Plugin -> our NBD server (size detected from block 0), then our
	// NBD server writes new data.
	srv := startWith(t, false, s3Flags(gw, ""), bucket+"/disk")
	readBack(t, srv.URI, written)
	data = roundTrip(t, srv.URI, 8<<20)
	if err := os.WriteFile(written, data, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.stop(syscall.SIGTERM)

	// NBD -> plugin, the geometry detected from block 0, not given.
	s = startNBDKit(t, append(params[:3:3], "bucket="+bucket+"/disk")...)
	readBack(t, s.URI, written)
	s.stop()
	if slices.Contains(bucketKeys(t, gw, bucket), flagKey) {
		t.Fatal("the 'already mounted' flag is left after a clean stop")
	}
}

// --nbd-flag/--nbd-param: our binary serves through nbdkit and the
// plugin, with the same start, signals and clean stop.
func TestNBDKitWrapper(t *testing.T) {
	needPlugin(t)
	dir := t.TempDir()
	// -v is nbdkit's --verbose: its debug lines show the plugin
	// received our translated parameters.
	s := startWith(t, false, []string{"--test", "--size=8M", "--blockSize=32k", "--nbd-flag=-v", "--nbd-param=s3b_blockCacheSize=10"}, dir)
	checkFlags(t, s.URI, 8<<20, 32<<10)
	roundTrip(t, s.URI, 8<<20)
	s.stop(syscall.SIGTERM)
	if !strings.Contains(s.logText(), "config key=s3b_blockCacheSize, value=10") {
		t.Errorf("nbdkit did not get the --nbd-param:\n%s", s.logText())
	}
	// A second start reads the data back (the stop flushed it).
	s = startWith(t, false, []string{"--test", "--size=8M", "--blockSize=32k", "--nbd-param=s3b_quiet=true"}, dir)
	if got := mapOf(t, s.URI); len(got) != 3 || !strings.HasSuffix(got[1], " 3") {
		t.Errorf("map %q: want data, the zeroed hole, data", got)
	}
	s.stop(syscall.SIGTERM)
}

// The wrapper on versitygw over TCP: the flag is there while serving and
// cleared by a clean stop; nbdkit's and the plugin's problems are reported
// clearly.
func TestNBDKitWrapperS3(t *testing.T) {
	needPlugin(t)
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := append(s3Flags(gw, ""), "--size=4M", "--blockSize=64k", "--nbd-flag=--threads=4")
	s := startWith(t, true, flags, bucket)
	roundTrip(t, s.URI, 4<<20)
	if !slices.Contains(bucketKeys(t, gw, bucket), "s3backer-mounted") {
		t.Error("no 'already mounted' flag while serving through nbdkit")
	}
	s.stop(syscall.SIGTERM)
	if slices.Contains(bucketKeys(t, gw, bucket), "s3backer-mounted") {
		t.Fatal("the 'already mounted' flag is left after a clean stop")
	}

	// A bad parameter: nbdkit's message, one line, non-zero exit.
	out, err := s3backerOut(t, "", append([]string{"--nbd", "-f", "--nbd-param=s3b_bogus=1", bucket, "nbd://127.0.0.1:0"}, s3Flags(gw, "")...)...)
	if err == nil || !strings.Contains(out, `s3backer: nbdkit failed (exit status 1): nbdkit: error: s3backer: unknown s3backer parameter "s3b_bogus"`) {
		t.Errorf("bad --nbd-param: %v\n%s", err, out)
	}
	// The disk cannot open (no such bucket): the plugin's message.
	out, err = s3backerOut(t, "", append([]string{"--nbd", "-f", "--nbd-flag=--threads=2", "--size=1M", "no-such-bucket-here", "nbd://127.0.0.1:0"}, s3Flags(gw, "")...)...)
	if err == nil || !strings.Contains(out, "s3backer: nbdkit failed") || !strings.Contains(out, "no-such-bucket-here") {
		t.Errorf("missing bucket: %v\n%s", err, out)
	}
	// No plugin where it was said to be.
	cmd := exec.Command(bin, "--nbd", "-f", "--test", "--size=1M", "--nbd-flag=-v", t.TempDir(), "nbd://127.0.0.1:0")
	cmd.Env = append(testEnv(t), "S3BACKER_PLUGIN=/nonexistent/nbdkit-s3backer-plugin.so")
	if o, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(o), "s3backer's nbdkit plugin /nonexistent/nbdkit-s3backer-plugin.so does not exist") {
		t.Errorf("missing plugin: %v\n%s", err, o)
	}
}

// Daemonized (no -f): the command returns once nbdkit serves; SIGTERM to
// the background process stops both.
func TestNBDKitWrapperDaemon(t *testing.T) {
	needPlugin(t)
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	dir := t.TempDir()
	cmd := exec.Command(bin, "--nbd", "--test", "--size=4M", "--nbd-flag=--threads=4", dir, "nbd+unix:///?socket="+sock)
	cmd.Env = testEnv(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("daemon start: %v\n%s", err, out)
	}
	pid := findProcess(t, sock)
	if pid == 0 {
		t.Fatal("no background s3backer process")
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	roundTrip(t, "nbd+unix:///?socket="+sock, 4<<20)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon to exit", 60*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	if _, err := os.Stat(sock); err == nil {
		t.Error("the socket is left behind")
	}
	if out, err := runOut("pgrep", "-f", "bucket="+dir); err == nil {
		t.Errorf("nbdkit still runs: %s", out)
	}
}

// A password typed at the prompt reaches the plugin through a pipe (never
// a command line), across the daemon's re-execution: the disk it encrypts
// opens later with --password.
func TestNBDKitWrapperPrompt(t *testing.T) {
	needPlugin(t)
	need(t, "script") // a terminal to type the password on
	dir, sock := t.TempDir(), filepath.Join(t.TempDir(), "nbd.sock")
	command := fmt.Sprintf("%s --nbd --test --size=4M --blockSize=64k --encrypt --nbd-flag=--threads=4 %s nbd+unix:///?socket=%s", bin, dir, sock)
	cmd := exec.Command("script", "-qec", command, "/dev/null")
	cmd.Env = testEnv(t)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lockedbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The terminal may drop input typed before the prompt turns echo off.
	waitFor(t, "the password prompt", 30*time.Second, func() bool { return strings.Contains(out.String(), "Password:") })
	if _, err := io.WriteString(stdin, "pw123\n"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("start: %v\n%s", err, out.String())
	}
	pid := findProcess(t, sock)
	if pid == 0 {
		t.Fatalf("no background s3backer process\n%s", out.String())
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	in, _ := randomFile(t, 4<<20)
	run(t, "nbdcopy", "--flush", in, "nbd+unix:///?socket="+sock)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon to exit", 60*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	s := startServer(t, dir, false, "--size=4M", "--blockSize=64k", "--encrypt", "--password=pw123")
	readBack(t, s.URI, in)
	s.stop(syscall.SIGTERM)
}
