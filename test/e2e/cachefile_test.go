package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// Geometry of the crash test: a small disk, a cache that holds a third of
// it (so blocks are evicted and slots reused), a write delay that keeps
// every block dirty until a FLUSH.
const (
	crashBS     = 64 << 10
	crashBlocks = 64
)

func crashFlags(gw *versitygw.Server, cacheFile string, extra ...string) []string {
	return append(append(s3Flags(gw, ""),
		fmt.Sprintf("--size=%d", crashBS*crashBlocks), "--blockSize=64k",
		"--blockCacheSize=24", "--blockCacheThreads=4", "--blockCacheWriteDelay=60000",
		"--blockCacheFile="+cacheFile), extra...)
}

// The client of the crash test: writes whole blocks or parts of blocks
// (whole 4 KiB sectors, or 512-byte units), each version recognisable
// (16-byte units of its sequence number, block number and a magic),
// sometimes zeroes a block or a part, and FLUSHes now and then. It prints
// "w BLOCK OFF LEN SEQ" (SEQ 0: zeroes) before each write and "f" after
// each FLUSH returns, so a line after a "w" means that write was
// acknowledged.
const crashClient = `
import random
rng = random.Random(%d)
BS, NB, seq = %d, %d, %d
def data(seq, b, n):
    return (seq.to_bytes(8, 'little') + b.to_bytes(4, 'little') + b'CRSH') * (n // 16)
for i in range(100000):
    b = rng.randrange(NB)
    r = rng.random()
    if r < 0.5:
        off, n = 0, BS
    else:
        unit = 4096 if r < 0.8 else 512
        first = rng.randrange(BS // unit)
        off, n = first * unit, rng.randint(1, BS // unit - first) * unit
    if rng.random() < 0.1:
        print("w %%d %%d %%d 0" %% (b, off, n), flush=True)
        h.zero(n, b * BS + off)
    else:
        seq += 1
        print("w %%d %%d %%d %%d" %% (b, off, n, seq), flush=True)
        h.pwrite(data(seq, b, n), b * BS + off)
    if rng.random() < 0.08:
        h.flush()
        print("f", flush=True)
`

// crashWrite is one write of the client: LEN bytes at OFF in its block,
// of version SEQ (0: zeroes).
type crashWrite struct {
	off, n int
	seq    uint64
}

// applyTo puts the write's bytes into block b's contents.
func (w crashWrite) applyTo(b int, block []byte) {
	p := block[w.off : w.off+w.n]
	if w.seq == 0 {
		clear(p)
		return
	}
	var unit [16]byte
	binary.LittleEndian.PutUint64(unit[:], w.seq)
	binary.LittleEndian.PutUint32(unit[8:], uint32(b))
	copy(unit[12:], "CRSH")
	for off := 0; off < len(p); off += 16 {
		copy(p[off:], unit[:])
	}
}

// crashModel is what the disk may hold: per block, the contents known to
// be durable (as of the last FLUSH that returned) and the writes
// acknowledged or in flight since. Writes to one block land in order, so
// after a crash the block must equal its durable contents with the first
// k of those writes applied, for some k: never garbage, never a torn
// write, never a later write without an earlier one, never less than what
// was flushed.
type crashModel struct {
	flushed [crashBlocks][]byte
	since   [crashBlocks][]crashWrite
}

func newCrashModel() *crashModel {
	m := &crashModel{}
	for b := range m.flushed {
		m.flushed[b] = make([]byte, crashBS)
	}
	return m
}

func (m *crashModel) apply(t *testing.T, log string) (writes, parts, flushes int) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "f":
			flushes++
			for b := range m.since {
				for _, w := range m.since[b] {
					w.applyTo(b, m.flushed[b])
				}
				m.since[b] = nil
			}
		case len(f) == 5 && f[0] == "w":
			b, err1 := strconv.Atoi(f[1])
			off, err2 := strconv.Atoi(f[2])
			n, err3 := strconv.Atoi(f[3])
			v, err4 := strconv.ParseUint(f[4], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil || err4 != nil ||
				b < 0 || b >= crashBlocks || off < 0 || n <= 0 || off+n > crashBS {
				t.Fatalf("client output: %q", line)
			}
			writes++
			if n < crashBS {
				parts++
			}
			m.since[b] = append(m.since[b], crashWrite{off: off, n: n, seq: v})
		case len(f) == 0:
		default:
			// The client's complaint when the server vanished.
		}
	}
	return writes, parts, flushes
}

// check reads the whole disk and requires every block to hold its durable
// contents with a prefix of the writes since applied; what it holds
// becomes the durable contents.
func (m *crashModel) check(t *testing.T, s *server, round int) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img")
	run(t, "nbdcopy", s.URI, img)
	disk, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for b := range crashBlocks {
		got := disk[b*crashBS : (b+1)*crashBS]
		want := slices.Clone(m.flushed[b])
		ok := bytes.Equal(got, want)
		for _, w := range m.since[b] {
			if ok {
				break
			}
			w.applyTo(b, want)
			ok = bytes.Equal(got, want)
		}
		if !ok {
			t.Fatalf("round %d: block %d holds neither its flushed contents nor those with some of the %d writes since (%v) applied; first difference from the flushed contents at byte %d\nserver log:\n%s",
				round, b, len(m.since[b]), m.since[b], firstDiff(got, m.flushed[b]), s3fKill(s))
		}
		m.flushed[b], m.since[b] = slices.Clone(got), nil
	}
}

// firstDiff is the offset of the first byte where a and b differ (-1: none).
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

var dirtyFoundRE = regexp.MustCompile(`cache file holds blocks from the last run.* dirty=(\d+)`)

// crashRecovered is how many dirty blocks s found in its cache file.
func crashRecovered(s *server) int {
	m := dirtyFoundRE.FindStringSubmatch(s.logText())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// lineCounter counts the lines written to it and signals when n arrive.
type lineCounter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines int
	at    int
	reach chan struct{}
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	c.lines += bytes.Count(p, []byte("\n"))
	if c.reach != nil && c.lines >= c.at {
		close(c.reach)
		c.reach = nil
	}
	return len(p), nil
}

func (c *lineCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// Crash test with real processes: s3backer --nbd with a cache file and a
// long write delay on versitygw; a client writes random blocks and parts
// of blocks with periodic FLUSHes; s3backer is killed with SIGKILL at a
// random moment (after a random number of writes), 20 times, and restarted
// each time on the same cache file with --blockCacheRecoverDirtyBlocks,
// without --force. After each restart every block holds exactly what was
// flushed before the kill, with some of the writes made since applied in
// order (see crashModel): never garbage, never a torn write, never less
// than was flushed.
func TestCacheFileCrash(t *testing.T) {
	need(t, "nbdsh", "nbdcopy")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	cacheFile := filepath.Join(t.TempDir(), "cache")
	flags := crashFlags(gw, cacheFile, "--blockCacheRecoverDirtyBlocks")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	const rounds = 20
	m := newCrashModel()
	s := startWith(t, false, flags, bucket)
	totalW, totalP, totalF, recovered := 0, 0, 0, 0
	for round := range rounds {
		out := &lineCounter{at: 5 + rng.IntN(400), reach: make(chan struct{})}
		reached := out.reach
		script := fmt.Sprintf(crashClient, rng.Uint64(), crashBS, crashBlocks, (round+1)*1_000_000)
		client := exec.Command("nbdsh", "-u", s.URI, "-c", script)
		client.Stdout = out
		client.Stderr = out
		if err := client.Start(); err != nil {
			t.Fatal(err)
		}
		clientDone := make(chan error, 1)
		go func() { clientDone <- client.Wait() }()
		select {
		case <-reached:
		case err := <-clientDone:
			t.Fatalf("round %d: the client ended before the kill (%v):\n%s\nserver log:\n%s", round, err, out, s3fKill(s))
		}
		if err := s.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-s.done
		recovered += crashRecovered(s) // its log is complete now
		<-clientDone                   // it fails: its server is gone
		w, p, fl := m.apply(t, out.String())
		totalW, totalP, totalF = totalW+w, totalP+p, totalF+fl

		// Every other restart trusts the file (no check against S3 by
		// ETag): what it recovers must be right by itself.
		f := flags
		if round%2 == 1 {
			f = append(slices.Clip(flags), "--blockCacheNoVerify")
		}
		s = startWith(t, false, f, bucket)
		m.check(t, s, round)
	}
	s.stop(syscall.SIGTERM)
	recovered += crashRecovered(s)
	t.Logf("%d rounds: %d writes (%d of part of a block), %d flushes checked; %d dirty blocks recovered", rounds, totalW, totalP, totalF, recovered)
	if totalF == 0 || recovered == 0 || totalP == 0 {
		t.Fatal("no FLUSH returned, no part write made, or no dirty block recovered, in any round: the test checked nothing")
	}
	// A clean stop wrote everything back: the bucket alone has it all,
	// read through a fresh cache file.
	s = startWith(t, false, crashFlags(gw, filepath.Join(t.TempDir(), "fresh")), bucket)
	m.check(t, s, rounds)
	s.stop(syscall.SIGTERM)
}

// After a kill -9 the 'already mounted' flag is still set: a restart with
// the same cache file takes it over without --force (the token recorded
// in the file matches the flag), one with another cache file is refused,
// naming --reset-mounted-flag. Without --blockCacheRecoverDirtyBlocks the
// dirty blocks are dropped with a warning giving their count.
func TestCacheFileRestartFlag(t *testing.T) {
	need(t, "nbdsh")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	dir := t.TempDir()
	cacheFile := filepath.Join(dir, "cache")
	s := startWith(t, false, crashFlags(gw, cacheFile), bucket)
	s3fNbdsh(t, s, `
h.pwrite(b"A" * 65536, 0)
h.flush()
for b in range(1, 4):
    h.pwrite(bytes([b]) * 65536, b * 65536)
`)
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done

	_, err := tryStart(t, false, crashFlags(gw, filepath.Join(dir, "other")), bucket)
	if err == nil || !strings.Contains(err.Error(), "already mounted") || !strings.Contains(err.Error(), "--reset-mounted-flag") {
		t.Fatalf("another cache file after a crash: %v", err)
	}
	s = startWith(t, false, crashFlags(gw, cacheFile), bucket)
	out := s3fNbdsh(t, s, `
print(h.pread(65536, 0)[:1].decode(), sum(h.pread(65536, b * 65536).count(0) == 65536 for b in range(1, 4)))
`)
	if strings.TrimSpace(out) != "A 3" {
		t.Fatalf("after a restart without recovery: %q, want the flushed block and 3 zero blocks", out)
	}
	s.stop(syscall.SIGTERM)
	if !strings.Contains(s.logText(), "dropping dirty blocks") || !strings.Contains(s.logText(), "blocks=3") {
		t.Errorf("no warning giving the count of dropped dirty blocks:\n%s", s.logText())
	}
	if slices.Contains(bucketKeys(t, gw, bucket), "s3backer-mounted") {
		t.Error("the flag is still set after a clean stop")
	}
}

// Clean blocks kept in the cache file are checked against S3 at their
// first read after a restart (a conditional GET on the recorded ETag): a
// block changed in the bucket behind the cache's back is noticed, unless
// --blockCacheNoVerify, which trusts the file.
func TestCacheFileVerify(t *testing.T) {
	need(t, "nbdsh")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	cacheFile := filepath.Join(t.TempDir(), "cache")
	s := startWith(t, false, crashFlags(gw, cacheFile), bucket)
	s3fNbdsh(t, s, `
h.pwrite(b"A" * 65536, 0)
h.pwrite(b"K" * 65536, 65536)
h.flush()
`)
	s.stop(syscall.SIGTERM)

	// Another s3backer, without the cache file, changes block 0.
	s = startWith(t, false, append(s3Flags(gw, ""), "--size=4M", "--blockSize=64k"), bucket)
	s3fNbdsh(t, s, `h.pwrite(b"B" * 65536, 0)`)
	s.stop(syscall.SIGTERM)

	read := func(s *server) string {
		return strings.TrimSpace(s3fNbdsh(t, s, `print(h.pread(65536, 0)[:1].decode() + h.pread(65536, 65536)[:1].decode())`))
	}
	s = startWith(t, false, crashFlags(gw, cacheFile, "--blockCacheNoVerify"), bucket)
	if got := read(s); got != "AK" {
		t.Fatalf("--blockCacheNoVerify read %q: the cache file was not trusted", got)
	}
	s.stop(syscall.SIGTERM)
	s = startWith(t, false, crashFlags(gw, cacheFile), bucket)
	if got := read(s); got != "BK" {
		t.Fatalf("verifying read %q, want the block changed in S3", got)
	}
	s.stop(syscall.SIGTERM)

	// The same with the MD5 cache (ecprotect) between the cache and S3:
	// the check goes through it.
	s = startWith(t, false, append(s3Flags(gw, ""), "--size=4M", "--blockSize=64k"), bucket)
	s3fNbdsh(t, s, `h.pwrite(b"C" * 65536, 0)`)
	s.stop(syscall.SIGTERM)
	s = startWith(t, false, crashFlags(gw, cacheFile, "--md5CacheSize=64", "--md5CacheTime=1000"), bucket)
	if got := read(s); got != "CK" {
		t.Fatalf("verifying read through the MD5 cache %q, want the block changed in S3", got)
	}
	s.stop(syscall.SIGTERM)
}

// A cache file of the C s3backer holding dirty blocks is refused with the
// way out; without dirty blocks it is rebuilt.
func TestCacheFileFromC(t *testing.T) {
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	cacheFile := filepath.Join(t.TempDir(), "cache")
	cfile := func(dirty bool) []byte {
		b := make([]byte, 4096+24*65536)
		for i, v := range []uint32{0xe496f17b, 64, 4, 4, 65536, 4096, 1, 24, 0x2a884500} {
			binary.LittleEndian.PutUint32(b[i*4:], v)
		}
		if dirty {
			binary.LittleEndian.PutUint32(b[64:], 3)
			binary.LittleEndian.PutUint32(b[64+20:], 1)
		}
		return b
	}
	if err := os.WriteFile(cacheFile, cfile(true), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := tryStart(t, false, crashFlags(gw, cacheFile), bucket)
	if err == nil || !strings.Contains(err.Error(), "C s3backer") || !strings.Contains(err.Error(), "--blockCacheRecoverDirtyBlocks") {
		t.Fatalf("C cache file with a dirty block: %v", err)
	}
	if err := os.WriteFile(cacheFile, cfile(false), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startWith(t, false, crashFlags(gw, cacheFile), bucket)
	if !strings.Contains(s.logText(), "rebuilding the cache file") {
		t.Errorf("no word of the rebuild:\n%s", s.logText())
	}
	s.stop(syscall.SIGTERM)
	f, err := os.Open(cacheFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head, _ := bufio.NewReader(f).Peek(8)
	if string(head) != "S3BGOCF\x00" {
		t.Fatalf("not rebuilt: starts %q", head)
	}
}
