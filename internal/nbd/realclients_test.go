package nbd

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Debian's nbdsh runs `python3` from PATH, and the libnbd bindings exist
// only for the system interpreter.
const systemPython = "/usr/bin/python3"

// TestRealClients serves the in-memory device over TCP and a unix socket
// and drives it with libnbd's nbdinfo and nbdsh.
func TestRealClients(t *testing.T) {
	nbdinfo, err := exec.LookPath("nbdinfo")
	if err != nil {
		t.Skip("nbdinfo not installed (Debian package libnbd-bin)")
	}
	nbdsh, err := exec.LookPath("nbdsh")
	if err != nil {
		t.Skip("nbdsh not installed (Debian package libnbd-bin)")
	}
	if err := exec.Command(systemPython, "-c", "import nbd").Run(); err != nil {
		t.Skipf("%s cannot import nbd (Debian package python3-libnbd): %v", systemPython, err)
	}
	env := append(os.Environ(), "PATH=/usr/bin:"+os.Getenv("PATH"))

	const size = 16 << 20
	dev := newMemDevice(size)
	dev.blockSize = 64 << 10
	s := NewServer(dev, Options{ExportName: "s3backer", Description: "test export"})

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- s.Serve(tcp) }()
	go func() { serveErr <- s.Serve(unix) }()

	uris := map[string]string{
		"tcp":  "nbd://" + tcp.Addr().String() + "/s3backer",
		"unix": "nbd+unix:///s3backer?socket=" + sock,
	}
	for name, uri := range uris {
		t.Run(name+"/nbdinfo", func(t *testing.T) { runNbdinfo(t, nbdinfo, env, uri, size) })
		t.Run(name+"/nbdsh", func(t *testing.T) { runNbdsh(t, nbdsh, env, uri, size) })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := recv(t, serveErr); err != nil {
			t.Fatalf("Serve: %v", err)
		}
	}
}

func runTool(t *testing.T, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runNbdinfo(t *testing.T, nbdinfo string, env []string, uri string, size int64) {
	out := runTool(t, env, nbdinfo, "--json", uri)
	var info struct {
		Protocol   string `json:"protocol"`
		Structured bool   `json:"structured"`
		Exports    []struct {
			Name        string   `json:"export-name"`
			Description string   `json:"description"`
			Size        int64    `json:"export-size"`
			Contexts    []string `json:"contexts"`
			ReadOnly    bool     `json:"is_read_only"`
			Rotational  bool     `json:"is_rotational"`
			CanCache    bool     `json:"can_cache"`
			CanDF       bool     `json:"can_df"`
			CanFastZero bool     `json:"can_fast_zero"`
			CanFlush    bool     `json:"can_flush"`
			CanFUA      bool     `json:"can_fua"`
			CanMulti    bool     `json:"can_multi_conn"`
			CanTrim     bool     `json:"can_trim"`
			CanZero     bool     `json:"can_zero"`
			MinBlock    int64    `json:"block_size_minimum"`
			PrefBlock   int64    `json:"block_size_preferred"`
			MaxBlock    int64    `json:"block_size_maximum"`
		} `json:"exports"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("nbdinfo output: %v\n%s", err, out)
	}
	if info.Protocol != "newstyle-fixed" || !info.Structured || len(info.Exports) != 1 {
		t.Fatalf("nbdinfo: %s", out)
	}
	e := info.Exports[0]
	ok := e.Size == size && e.Description == "test export" &&
		e.MinBlock == 1 && e.PrefBlock == 64<<10 && e.MaxBlock == DefaultMaxPayload &&
		!e.ReadOnly && !e.Rotational &&
		e.CanCache && e.CanDF && e.CanFastZero && e.CanFlush && e.CanFUA && e.CanMulti && e.CanTrim && e.CanZero &&
		len(e.Contexts) == 1 && e.Contexts[0] == metaBaseAllocation
	if !ok {
		t.Fatalf("nbdinfo reports %+v\n%s", e, out)
	}

	// --list goes through NBD_OPT_LIST and then NBD_OPT_INFO per export.
	out = runTool(t, env, nbdinfo, "--list", "--json", uri)
	info.Exports = nil
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("nbdinfo --list output: %v\n%s", err, out)
	}
	if len(info.Exports) != 1 || info.Exports[0].Name != "s3backer" || info.Exports[0].Size != size {
		t.Fatalf("nbdinfo --list: %s", out)
	}
}

// nbdshScript exercises every command through libnbd; Python asserts fail
// the run with a nonzero exit.
const nbdshScript = `
import errno
SIZE = %d
assert h.get_size() == SIZE
assert h.get_structured_replies_negotiated()
for cap in (h.can_flush, h.can_fua, h.can_trim, h.can_zero, h.can_fast_zero,
            h.can_cache, h.can_multi_conn, h.can_df):
    assert cap(), cap
assert not h.is_read_only()
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
assert h.get_block_size(nbd.SIZE_MINIMUM) == 1
assert h.get_block_size(nbd.SIZE_PREFERRED) == 65536
assert h.get_block_size(nbd.SIZE_MAXIMUM) == 32 << 20

assert h.pread(65536, 0) == bytes(65536)
data = bytes(range(256)) * 512                    # 128 KiB at 64 KiB
h.pwrite(data, 65536, nbd.CMD_FLAG_FUA)
assert h.pread(len(data), 65536) == data
assert h.pread(100, 65536 + 1000) == data[1000:1100]   # unaligned
h.pwrite(b"tail", SIZE - 4)
assert h.pread(4, SIZE - 4) == b"tail"
h.flush()

h.trim(4096, 65536, nbd.CMD_FLAG_FUA)
assert h.pread(4096, 65536) == bytes(4096)
h.zero(8192, 65536 + 4096, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(8192, 65536 + 4096) == bytes(8192)
h.zero(4096, 65536 + 12288, nbd.CMD_FLAG_FAST_ZERO)
assert h.pread(16384, 65536) == bytes(16384)
try:
    h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_NO_HOLE)
    raise AssertionError("fast zero with NO_HOLE succeeded")
except nbd.Error as e:
    assert e.errnum == errno.ENOTSUP, e
h.cache(65536, 0)

extents = []
def collect(metacontext, offset, entries, err):
    assert metacontext == nbd.CONTEXT_BASE_ALLOCATION
    assert offset == 0
    extents.extend(zip(entries[0::2], entries[1::2]))
    return 0
h.block_status(262144, 0, collect)
# [0,64K) never written, [64K,80K) trimmed/zeroed, [80K,192K) data, then zero.
assert extents == [(81920, 3), (114688, 0), (65536, 3)], extents
extents.clear()
h.block_status(262144, 0, collect, nbd.CMD_FLAG_REQ_ONE)
assert extents == [(81920, 3)], extents

h.set_strict_mode(0)  # let the server judge out-of-range requests
try:
    h.pread(512, SIZE)
    raise AssertionError("read past the end succeeded")
except nbd.Error as e:
    assert e.errnum == errno.EINVAL, e
try:
    h.pwrite(b"x" * 512, SIZE)
    raise AssertionError("write past the end succeeded")
except nbd.Error as e:
    assert e.errnum == errno.ENOSPC, e
assert h.pread(4, 98304) == data[32768:32772]   # still in sync
h.shutdown()
`

func runNbdsh(t *testing.T, nbdsh string, env []string, uri string, size int64) {
	runTool(t, env, nbdsh, "--base-allocation", "-u", uri, "-c", fmt.Sprintf(nbdshScript, size))
}
