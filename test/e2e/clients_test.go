package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// nbdinfo sees the size, block sizes, every capability and base:allocation.
func TestNbdinfo(t *testing.T) {
	need(t, "nbdinfo")
	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp=%v", tcp), func(t *testing.T) {
			s := startServer(t, t.TempDir(), tcp, "--size=64M", "--blockSize=64k")
			var info struct {
				Exports []map[string]any `json:"exports"`
			}
			if err := json.Unmarshal([]byte(run(t, "nbdinfo", "--json", "--no-content", s.URI)), &info); err != nil {
				t.Fatal(err)
			}
			if len(info.Exports) != 1 {
				t.Fatalf("%d exports, want 1", len(info.Exports))
			}
			e := info.Exports[0]
			want := map[string]any{
				"export-size": 64.0 * 1024 * 1024, "block_size_minimum": 1.0, "block_size_preferred": 65536.0,
				"is_read_only": false, "can_flush": true, "can_fua": true, "can_trim": true, "can_zero": true,
				"can_fast_zero": true, "can_cache": true, "can_multi_conn": true,
			}
			for k, v := range want {
				if e[k] != v {
					t.Errorf("%s = %v, want %v", k, e[k], v)
				}
			}
			if max, _ := e["block_size_maximum"].(float64); max < 65536 {
				t.Errorf("block_size_maximum = %v, want at least the block size", e["block_size_maximum"])
			}
			ctxs, _ := json.Marshal(e["contexts"])
			if !strings.Contains(string(ctxs), `"base:allocation"`) {
				t.Errorf("contexts %s lack base:allocation", ctxs)
			}
			s.stop(syscall.SIGTERM)
		})
	}
}

func TestReadOnlyExport(t *testing.T) {
	need(t, "nbdinfo", "nbdsh")
	s := startServer(t, t.TempDir(), false, "--size=1M", "--blockSize=4k", "--readOnly")
	if out := run(t, "nbdinfo", "--json", "--no-content", s.URI); !strings.Contains(out, `"is_read_only": true`) {
		t.Fatalf("read-only export not advertised as such:\n%s", out)
	}
	// libnbd refuses writes to a read-only export itself unless strict mode
	// is off; with it off the server must answer EPERM.
	run(t, "nbdsh", "-u", s.URI, "-c", `
h.set_strict_mode(0)
for op in (lambda: h.pwrite(b"x"*512, 0), lambda: h.trim(4096, 0), lambda: h.zero(4096, 0)):
    try:
        op()
        raise SystemExit("write-type command succeeded on a read-only export")
    except nbd.Error as e:
        assert e.errno == "EPERM", e
assert h.pread(512, 0) == bytes(512)
`)
	s.stop(syscall.SIGINT)
}

// Every command and flag through libnbd's Python shell.
func TestNbdshCommands(t *testing.T) {
	need(t, "nbdsh")
	dir := t.TempDir()
	s := startServer(t, dir, false, "--size=8M", "--blockSize=64k")
	script, err := os.ReadFile("testdata/commands.py")
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "nbdsh", "--base-allocation", "-u", s.URI, "-c", string(script))
	if !strings.Contains(out, "all commands ok") {
		t.Fatalf("script did not finish:\n%s", out)
	}
	s.stop(syscall.SIGTERM)
	// The script leaves exactly blocks 0, 6 and 127 non-zero.
	files := blockFiles(t, dir)
	if strings.Join(files, ",") != "00000000,00000006,0000007f" {
		t.Fatalf("block files %v, want [00000000 00000006 0000007f]", files)
	}
}

// qemu-io pattern writes and verified reads at unaligned offsets.
func TestQemuIO(t *testing.T) {
	need(t, "qemu-io")
	s := startServer(t, t.TempDir(), true, "--size=16M", "--blockSize=4k")
	// qemu wants nbd://host:port/ with an (empty) export path.
	uri := s.URI + "/"
	ops := [][2]string{
		{"write -P 0xab 1000 70001", "read -P 0xab 1000 70001"},
		{"write -P 0x11 4095 2", "read -P 0x11 4095 2"},
		{"write -z 3000 5000", "read -P 0 3000 5000"},
		{"write -P 0x5a 16773000 4216", "read -P 0x5a 16773000 4216"},
		{"discard 65536 131072", "read -P 0 65536 131072"},
	}
	args := []string{"-f", "raw"}
	for _, op := range ops {
		args = append(args, "-c", op[0], "-c", op[1])
	}
	// Earlier patterns that later ops did not overwrite must still be there.
	args = append(args, "-c", "read -P 0xab 1000 2000", "-c", "read -P 0xab 8000 57536", "-c", "flush", uri)
	out := run(t, "qemu-io", args...)
	if strings.Contains(out, "Pattern verification failed") || strings.Contains(out, "error") {
		t.Fatalf("qemu-io:\n%s", out)
	}
	if got := strings.Count(out, "read "); got != len(ops)+2 {
		t.Fatalf("%d reads reported, want %d:\n%s", got, len(ops)+2, out)
	}
	s.stop(syscall.SIGTERM)
}

func randomFile(t *testing.T, size int) (string, [32]byte) {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	// Some all-zero blocks inside, which must not be stored.
	clear(data[1<<20 : 3<<20])
	p := filepath.Join(t.TempDir(), "in.img")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, sha256.Sum256(data)
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// 64 MiB of random data in and out with nbdcopy, over several connections,
// then again after a restart.
func TestNbdcopyRoundTrip(t *testing.T) {
	need(t, "nbdcopy")
	const size = 64 << 20
	dir := t.TempDir()
	in, sum := randomFile(t, size)
	s := startServer(t, dir, false, "--size=64M", "--blockSize=256k")
	run(t, "nbdcopy", "--connections=4", "--flush", in, s.URI)
	out := filepath.Join(t.TempDir(), "out.img")
	run(t, "nbdcopy", s.URI, out)
	if fileSum(t, out) != sum {
		t.Fatal("nbdcopy out differs from what went in")
	}
	s.stop(syscall.SIGTERM)
	// 64 MiB / 256 KiB = 256 blocks, of which the 2 MiB of zeroes = 8 blocks
	// are not stored.
	if n := len(blockFiles(t, dir)); n != 256-8 {
		t.Fatalf("%d block files, want %d", n, 256-8)
	}
	s = startServer(t, dir, true, "--size=64M", "--blockSize=256k")
	run(t, "nbdcopy", s.URI, out)
	if fileSum(t, out) != sum {
		t.Fatal("data differs after restart")
	}
	s.stop(syscall.SIGINT)
}

// Several independent clients at once, each on its own region, all
// verified by a last client.
func TestConcurrentClients(t *testing.T) {
	need(t, "qemu-io", "nbdsh")
	s := startServer(t, t.TempDir(), true, "--size=32M", "--blockSize=64k")
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Regions deliberately straddle block boundaries and share blocks
			// with their neighbours.
			off := i*1000003 + 777
			pat := fmt.Sprintf("0x%02x", 0x20+i)
			out, err := runOut("qemu-io", "-f", "raw",
				"-c", fmt.Sprintf("write -P %s %d 1000003", pat, off),
				"-c", fmt.Sprintf("read -P %s %d 1000003", pat, off), s.URI+"/")
			if err != nil || strings.Contains(out, "failed") {
				errs <- fmt.Sprintf("client %d: %v\n%s", i, err, out)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	var checks bytes.Buffer
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&checks, "assert h.pread(1000003, %d) == bytes([%d])*1000003, %d\n", i*1000003+777, 0x20+i, i)
	}
	checks.WriteString("assert h.pread(777, 0) == bytes(777)\n")
	run(t, "nbdsh", "-u", s.URI, "-c", checks.String())
	s.stop(syscall.SIGTERM)
}
