package vm

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVMBench is the kernel path's benchmark (bench/vm.sh), not a test:
// it runs only with S3BACKER_VM_BENCH=1. The guest (testdata/bench.sh
// instead of init.sh) times dd through ext4 on /dev/nbd0 served by
// s3backer --nbd --test, and on a ram disk and a tmpfs-backed loop device
// as the ceiling under the same emulation. Each "@@BENCH dev run op MB/s
// seconds" line is logged and, with S3BACKER_VM_BENCH_OUT set, written to
// that file without the "@@BENCH " prefix. S3BACKER_VM_BENCH_MB (128) and
// S3BACKER_VM_BENCH_RUNS (3) set the amount of data and the rounds;
// S3BACKER_VM_BENCH_FLAGS adds s3backer flags (space-separated);
// S3BACKER_VM_BENCH_NBD_QUEUE, if set, changes /dev/nbd0's queue settings
// ("max_sectors_kb=1024 read_ahead_kb=1024").
func TestVMBench(t *testing.T) {
	if os.Getenv("S3BACKER_VM_BENCH") != "1" {
		t.Skip("the VM benchmark runs with S3BACKER_VM_BENCH=1 (bench/vm.sh)")
	}
	mb := benchEnvInt(t, "S3BACKER_VM_BENCH_MB", 128)
	runs := benchEnvInt(t, "S3BACKER_VM_BENCH_RUNS", 3)
	const diskMB = 512
	img := buildImage(t)

	script, err := os.ReadFile(filepath.Join("testdata", "bench.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// The ceiling's drivers, on top of the image's modules: neither has
	// dependencies, so each is one file.
	k := fetchKernel(t)
	files := map[string][]byte{"init": script}
	for _, name := range []string{"brd", "loop"} {
		mods, err := resolveModules(k.modulesDir(), []string{name})
		if err != nil {
			t.Fatal(err)
		}
		if len(mods) != 1 {
			t.Fatalf("module %s needs %v", name, mods)
		}
		b, err := os.ReadFile(filepath.Join(k.modulesDir(), mods[0]))
		if err != nil {
			t.Fatal(err)
		}
		files["modules/"+name+".ko"] = b
	}
	initrd, err := img.withRunConf(map[string]string{
		"S3B_ARGS":  strings.TrimSpace("--test --size="+strconv.Itoa(diskMB)+"M --blockSize=256k "+os.Getenv("S3BACKER_VM_BENCH_FLAGS")) + " /tmp/s3b",
		"MB":        strconv.Itoa(mb),
		"RUNS":      strconv.Itoa(runs),
		"DISK_MB":   strconv.Itoa(diskMB),
		"NBD_QUEUE": os.Getenv("S3BACKER_VM_BENCH_NBD_QUEUE"),
	})
	if err != nil {
		t.Fatal(err)
	}
	initrd, err = appendFiles(initrd, files)
	if err != nil {
		t.Fatal(err)
	}

	// The data lives four times in the guest's memory (source, s3backer's
	// blocks, the ram disk and the loop file), plus the page cache: qemu
	// takes the last -m.
	limit := time.Duration(10+runs*mb/16) * time.Minute
	c := bootVM(t, img, initrd, limit, "-nic", "none", "-m", "2048")
	checkSteps(t, c, []string{"modules", "source", "attach", "mkfs", "bench", "verify", "stop"})

	var out strings.Builder
	for _, l := range c.lines {
		if i := strings.Index(l, "@@BENCH "); i >= 0 {
			out.WriteString(l[i+len("@@BENCH "):] + "\n")
		}
	}
	if n := strings.Count(out.String(), "\n"); n != runs*3*2 {
		t.Fatalf("%d @@BENCH lines, want %d", n, runs*3*2)
	}
	t.Logf("results (dev run op MB/s seconds):\n%s", out.String())
	if p := os.Getenv("S3BACKER_VM_BENCH_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func benchEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// appendFiles appends an archive of files (executable, by path) to
// initrd: the kernel unpacks concatenated archives in order, so a file
// already there (as /init) is replaced.
func appendFiles(initrd []byte, files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	c := newCPIO(zw)
	for _, n := range names {
		c.File(n, 0o755, files[n])
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return append(append([]byte(nil), initrd...), buf.Bytes()...), nil
}
