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

// The client of the crash test: writes whole blocks, each version
// recognisable (its sequence number and block number repeated through the
// block), sometimes zeroes a block, and FLUSHes now and then. It prints
// "w BLOCK SEQ" (SEQ 0: zeroes) before each write and "f" after each
// FLUSH returns, so a line after a "w" means that write was acknowledged.
const crashClient = `
import random
rng = random.Random(%d)
BS, NB, seq = %d, %d, %d
def data(seq, b):
    return (seq.to_bytes(8, 'little') + b.to_bytes(4, 'little') + b'CRSH') * (BS // 16)
for i in range(100000):
    b = rng.randrange(NB)
    if rng.random() < 0.1:
        print("w %%d 0" %% b, flush=True)
        h.zero(BS, b * BS)
    else:
        seq += 1
        print("w %%d %%d" %% (b, seq), flush=True)
        h.pwrite(data(seq, b), b * BS)
    if rng.random() < 0.08:
        h.flush()
        print("f", flush=True)
`

// crashModel is what the disk may hold: per block, the version known to be
// durable (acknowledged before a FLUSH that returned) and the versions
// written since, any of which may have reached the cache file or S3.
type crashModel struct {
	flushed [crashBlocks]uint64
	since   [crashBlocks][]uint64
}

func (m *crashModel) apply(t *testing.T, log string) (writes, flushes int) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "f":
			flushes++
			for b := range m.since {
				if k := len(m.since[b]); k > 0 {
					m.flushed[b] = m.since[b][k-1]
					m.since[b] = nil
				}
			}
		case len(f) == 3 && f[0] == "w":
			b, err1 := strconv.Atoi(f[1])
			v, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil || b < 0 || b >= crashBlocks {
				t.Fatalf("client output: %q", line)
			}
			writes++
			m.since[b] = append(m.since[b], v)
		case len(f) == 0:
		default:
			// The client's complaint when the server vanished.
		}
	}
	return writes, flushes
}

// version decodes a block read back: 0 for zeroes, else its sequence
// number; an error for anything that is not one whole version of this
// block (garbage, a torn or misplaced block).
func crashVersion(b int, data []byte) (uint64, error) {
	if bytes.Equal(data, make([]byte, len(data))) {
		return 0, nil
	}
	unit := data[:16]
	if string(unit[12:]) != "CRSH" || binary.LittleEndian.Uint32(unit[8:]) != uint32(b) {
		return 0, fmt.Errorf("block %d holds garbage (starts %x)", b, unit)
	}
	for off := 16; off < len(data); off += 16 {
		if !bytes.Equal(data[off:off+16], unit) {
			return 0, fmt.Errorf("block %d is torn at byte %d", b, off)
		}
	}
	return binary.LittleEndian.Uint64(unit), nil
}

// check reads the whole disk and requires every block to hold its durable
// version or one written since; what it holds becomes the durable version.
func (m *crashModel) check(t *testing.T, s *server, round int) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img")
	run(t, "nbdcopy", s.URI, img)
	disk, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for b := range crashBlocks {
		v, err := crashVersion(b, disk[b*crashBS:(b+1)*crashBS])
		if err != nil {
			t.Fatalf("round %d: %v\nserver log:\n%s", round, err, s3fKill(s))
		}
		if v != m.flushed[b] && !slices.Contains(m.since[b], v) {
			t.Fatalf("round %d: block %d holds version %d; flushed was %d, written since %v\nserver log:\n%s",
				round, b, v, m.flushed[b], m.since[b], s3fKill(s))
		}
		m.flushed[b], m.since[b] = v, nil
	}
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
// long write delay on versitygw; a client writes random blocks with
// periodic FLUSHes; s3backer is killed with SIGKILL at a random moment
// (after a random number of writes), 20 times, and restarted each time on
// the same cache file with --blockCacheRecoverDirtyBlocks, without
// --force. After each restart every block holds exactly what was flushed
// before the kill, or a version written after that flush: never garbage,
// never a torn block, never an older version.
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
	var m crashModel
	s := startWith(t, false, flags, bucket)
	totalW, totalF, recovered := 0, 0, 0
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
		w, fl := m.apply(t, out.String())
		totalW, totalF = totalW+w, totalF+fl

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
	t.Logf("%d rounds: %d writes, %d flushes checked; %d dirty blocks recovered", rounds, totalW, totalF, recovered)
	if totalF == 0 || recovered == 0 {
		t.Fatal("no FLUSH returned, or no dirty block recovered, in any round: the test checked nothing")
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
