package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockkey"
	"github.com/s3backer-go/s3backer/internal/testenv/faultproxy"
	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// The tests here put a faultproxy between s3backer and versitygw: it counts
// every S3 request by kind (GET object, PUT, DELETE, POST delete, ...) and
// injects the failures real networks and stores produce.

// mountFlag is the key of the 'already mounted' flag (no --prefix).
const mountFlag = "s3backer-mounted"

// s3fStart starts s3backer on bucket through the proxy p.
func s3fStart(t *testing.T, gw *versitygw.Server, p *faultproxy.Proxy, bucket string, flags ...string) *server {
	t.Helper()
	// --baseURL must end with a slash; the proxy's URL has none.
	return startWith(t, false, append(s3Flags(gw, p.URL+"/"), flags...), bucket)
}

// s3fWaitSurvey waits up to timeout for the --listBlocks survey to
// complete, as an NBD client sees it: block status reports the whole disk
// as one hole. Before the survey settles, blocks are unknown and the zero
// layer (the codec below cannot probe) reports them as data; after, known
// zero is a hole. Block status costs no S3 request either way.
func s3fWaitSurvey(t *testing.T, s *server, size int64, timeout time.Duration) {
	t.Helper()
	want := []string{"0", strconv.FormatInt(size, 10), "3"}
	deadline := time.Now().Add(timeout)
	for {
		out, err := runOut("nbdinfo", "--map", s.URI)
		if f := strings.Fields(out); err == nil && len(f) == 4 && slices.Equal(f[:3], want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the --listBlocks survey did not complete within %v (block status: %q); server log:\n%s",
				timeout, out, s3fKill(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// s3fKinds are the kinds of request the proxy tells apart.
var s3fKinds = []faultproxy.Kind{
	faultproxy.KindGetObject, faultproxy.KindHead, faultproxy.KindPut, faultproxy.KindDelete,
	faultproxy.KindDeleteMany, faultproxy.KindList, faultproxy.KindOther,
}

// s3fFmt shows the non-zero counts of a tally.
func s3fFmt(byKind map[faultproxy.Kind]int64) string {
	var parts []string
	for _, k := range s3fKinds {
		if n := byKind[k]; n != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// s3fExpect requires that exactly want reached the proxy since the last
// ResetCounts (kinds not in want: none), and resets the counts.
func s3fExpect(t *testing.T, p *faultproxy.Proxy, what string, want map[faultproxy.Kind]int64) {
	t.Helper()
	got := p.Counts().Received.ByKind
	p.ResetCounts()
	ok := true
	for _, k := range s3fKinds {
		if got[k] != want[k] {
			ok = false
		}
	}
	if !ok {
		t.Errorf("%s: S3 requests %s, want %s", what, s3fFmt(got), s3fFmt(want))
	} else {
		t.Logf("%s: S3 requests %s", what, s3fFmt(got))
	}
}

// s3fNbdsh runs a Python snippet against s and returns its output; on
// failure it stops s and fails the test with the server's log too.
func s3fNbdsh(t *testing.T, s *server, script string) string {
	t.Helper()
	out, err := runOut("nbdsh", "-u", s.URI, "-c", script)
	if err != nil {
		t.Fatalf("nbdsh: %v\n%s\nscript:%s\nserver log:\n%s", err, out, script, s3fKill(s))
	}
	return out
}

// s3fKill stops s (whatever its exit status) and returns its log. It is
// for failure paths only: it consumes what s.stop would wait for.
func s3fKill(s *server) string {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return s.logText()
}

// s3fBlockData is the content TestS3RequestCounts writes to block b: never
// zero, different for every block. The Python expression builds the same.
func s3fBlockData(b, bs int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%08d", b)), bs/8) }

const s3fBlockDataPy = `(b"%08d" % b) * (BS // 8)`

// Every S3 request s3backer makes is one it needs: nothing for blocks the
// zero layer knows are zero, one PUT per block written, one GET per stored
// block read, and bulk deletes only for the blocks that are stored.
func TestS3RequestCounts(t *testing.T) {
	need(t, "nbdsh", "nbdcopy", "nbdinfo")
	gw := versitygw.Shared(t)
	p := faultproxy.Start(t, gw.URL)
	const (
		size = 64 << 20
		bs   = 16 << 10
		nb   = size / bs // 4096 blocks: zeroing batches [0,1000) ... [4000,4096)
	)
	namer := blockkey.Namer{NumBlocks: nb}
	geometry := []string{"--size=64M", "--blockSize=16k"}

	// 37 blocks in the zeroing batches 0, 1 and 4 of the whole disk;
	// batches 2 and 3 hold none.
	var written []int
	for i := range 35 {
		written = append(written, 7+57*i) // 7 .. 1945
	}
	written = append(written, 4001, 4095)
	pyList := func(bl []int) string {
		s := make([]string, len(bl))
		for i, b := range bl {
			s[i] = strconv.Itoa(b)
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	pre := fmt.Sprintf("BS = %d\n", bs)

	t.Run("listBlocks", func(t *testing.T) {
		bucket := gw.NewBucket(t)
		s := s3fStart(t, gw, p, bucket, append(geometry, "--listBlocks")...)
		s3fWaitSurvey(t, s, size, 30*time.Second)
		p.ResetCounts()

		// (a) A fresh disk read end to end, each block really asked for
		// (--no-extents: nbdcopy would otherwise skip the holes), and
		// with block status.
		run(t, "nbdcopy", "--no-extents", s.URI, "null:")
		s3fExpect(t, p, "reading the fresh disk (nbdcopy --no-extents)", nil)
		run(t, "nbdcopy", s.URI, "null:")
		s3fExpect(t, p, "reading the fresh disk (nbdcopy)", nil)

		// (c) Zeroes over absent blocks: the whole disk in bulk, one
		// block, part of one, an unaligned range, trims, with FUA.
		s3fNbdsh(t, s, pre+`
h.zero(h.get_size(), 0)
h.zero(BS, 5 * BS)
h.zero(100, 6 * BS + 7)
h.zero(20 * BS + 1, 9 * BS + 3, nbd.CMD_FLAG_FUA)
h.trim(h.get_size(), 0)
h.trim(BS, 40 * BS)
h.pwrite(bytearray(3 * BS), 50 * BS)
h.pwrite(bytearray(BS // 2), 60 * BS + 10)
h.flush()
`)
		s3fExpect(t, p, "zeroing absent blocks", nil)

		// (b) 37 whole-block writes: 37 PUTs, no GET (no read-modify-write).
		s3fNbdsh(t, s, pre+`
for b in `+pyList(written)+`:
    h.pwrite(`+s3fBlockDataPy+`, b * BS)
h.flush()
`)
		s3fExpect(t, p, "writing 37 whole blocks", map[faultproxy.Kind]int64{faultproxy.KindPut: int64(len(written))})
		want := make([]byte, size)
		var wantKeys []string
		for _, b := range written {
			copy(want[b*bs:], s3fBlockData(b, bs))
			wantKeys = append(wantKeys, namer.Name(uint64(b)))
		}
		wantKeys = append(wantKeys, mountFlag)
		slices.Sort(wantKeys)
		if got := bucketKeys(t, gw, bucket); !slices.Equal(got, wantKeys) {
			t.Fatalf("bucket holds %d keys %v..., want %d %v...", len(got), head(got), len(wantKeys), head(wantKeys))
		}
		p.ResetCounts()

		// Reading everything back: the 37 blocks just written are still in
		// the block cache and the rest are known zero, so no request.
		out := filepath.Join(t.TempDir(), "disk")
		run(t, "nbdcopy", "--no-extents", s.URI, out)
		if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
			t.Fatal("disk read back differs from what was written")
		}
		s3fExpect(t, p, "reading the disk with 37 stored blocks", nil)

		// (c) again, between the stored blocks: still nothing.
		s3fNbdsh(t, s, pre+`
h.zero(49 * BS, 8 * BS)          # blocks 8..56, between 7 and 64: bulk
h.zero(BS, 2000 * BS)            # one absent block
h.zero(100, 65 * BS + 100)       # part of an absent block
h.zero(40 * BS, 2500 * BS + 17)  # unaligned, in batch 2 and 3 only
h.trim(900 * BS, 2100 * BS)      # batches 2 and 3: nothing stored there
h.flush()
`)
		s3fExpect(t, p, "zeroing absent blocks between stored ones", nil)

		// (d) Zeroing stored blocks: one alone is one DELETE; the whole
		// disk in one request deletes the rest in bulk, one POST per
		// zeroing batch that holds a stored block (0, 1 and 4; not 2, 3).
		s3fNbdsh(t, s, pre+`
for b in [7, 1945, 4095]:
    h.zero(BS, b * BS)
h.flush()
`)
		s3fExpect(t, p, "zeroing 3 stored blocks one by one", map[faultproxy.Kind]int64{faultproxy.KindDelete: 3})
		if got := len(bucketKeys(t, gw, bucket)); got != len(wantKeys)-3 {
			t.Fatalf("bucket holds %d keys after deleting 3 of %d", got, len(wantKeys))
		}
		p.ResetCounts()
		s3fNbdsh(t, s, `h.zero(h.get_size(), 0, nbd.CMD_FLAG_FUA)`)
		s3fExpect(t, p, "zeroing the whole disk with 34 stored blocks", map[faultproxy.Kind]int64{faultproxy.KindDeleteMany: 3})
		if got := bucketKeys(t, gw, bucket); !slices.Equal(got, []string{mountFlag}) {
			t.Fatalf("after zeroing the whole disk the bucket holds %d keys %v...", len(got), head(got))
		}
		p.ResetCounts()
		// Now all known zero again.
		s3fNbdsh(t, s, `h.zero(h.get_size(), 0); h.trim(h.get_size(), 0)`)
		run(t, "nbdcopy", "--no-extents", s.URI, "null:")
		s3fExpect(t, p, "zeroing and reading the zeroed disk", nil)

		s.stop(syscall.SIGTERM)
		if !strings.Contains(s.logText(), "survey of stored blocks complete") {
			t.Errorf("no survey completion in the log:\n%s", s.logText())
		}
	})

	// Without --listBlocks a block is unknown until first touched; then
	// the zero layer remembers.
	t.Run("noListBlocks", func(t *testing.T) {
		s := s3fStart(t, gw, p, gw.NewBucket(t), geometry...)
		p.ResetCounts()
		steps := []struct {
			what, script string
			want         map[faultproxy.Kind]int64
		}{
			{"first read of a never-written block", `h.pread(BS, 100 * BS)`, map[faultproxy.Kind]int64{faultproxy.KindGetObject: 1}},
			{"reading it again, whole and in part", `h.pread(BS, 100 * BS); h.pread(10, 100 * BS + 5)`, nil},
			{"first partial read of another", `h.pread(100, 200 * BS + 50)`, map[faultproxy.Kind]int64{faultproxy.KindGetObject: 1}},
			{"reading it again", `h.pread(BS, 200 * BS)`, nil},
			{"zeroing an unknown block", `h.zero(BS, 300 * BS); h.flush()`, map[faultproxy.Kind]int64{faultproxy.KindDelete: 1}},
			{"zeroing and reading it again", `h.zero(BS, 300 * BS); h.pread(BS, 300 * BS); h.flush()`, nil},
			{"zeroing a read-as-zero block", `h.zero(BS, 100 * BS); h.trim(10, 200 * BS)`, nil},
		}
		for _, st := range steps {
			s3fNbdsh(t, s, pre+st.script)
			s3fExpect(t, p, st.what, st.want)
		}
		s.stop(syscall.SIGTERM)
	})
}

// s3fTrimAll is an nbdsh script that trims the whole disk in requests of
// at most 2 GiB (an NBD request's length is 32 bits).
const s3fTrimAll = `
size, step = h.get_size(), 2 << 30
for off in range(0, size, step):
    h.trim(min(step, size - off), off)
`

// Trimming a 64 GiB disk of 262144 blocks: with --listBlocks, requests
// only for the blocks stored; without, bulk deletes of up to 1000 keys,
// never one request per block. Either way the bucket ends up empty.
func TestS3TrimAtScale(t *testing.T) {
	need(t, "nbdsh", "nbdinfo")
	gw := versitygw.Shared(t)
	p := faultproxy.Start(t, gw.URL)
	const (
		size    = 64 << 30
		bs      = 256 << 10
		nb      = size / bs // 262144
		perTrim = (2 << 30) / bs
	)
	stored := []int{0, 1, 999, 100000, nb - 1}
	writeScript := fmt.Sprintf("BS = %d\nfor b in %s:\n    h.pwrite(%s, b * BS)\nh.flush()\n",
		bs, strings.ReplaceAll(fmt.Sprint(stored), " ", ","), s3fBlockDataPy)
	geometry := []string{"--size=64G", "--blockSize=256k"}

	setup := func(t *testing.T, flags ...string) (*server, string) {
		bucket := gw.NewBucket(t)
		s := s3fStart(t, gw, p, bucket, append(geometry, flags...)...)
		return s, bucket
	}
	checkEmpty := func(t *testing.T, bucket string) {
		t.Helper()
		if got := bucketKeys(t, gw, bucket); !slices.Equal(got, []string{mountFlag}) {
			t.Fatalf("after trimming the whole disk the bucket holds %d keys %v...", len(got), head(got))
		}
	}
	trimAll := func(t *testing.T, s *server) faultproxy.Counts {
		t.Helper()
		p.ResetCounts()
		start := time.Now()
		s3fNbdsh(t, s, s3fTrimAll)
		el := time.Since(start)
		c := p.Counts()
		p.ResetCounts()
		t.Logf("trim of 64 GiB in %d requests: %s in %v", size/(2<<30), s3fFmt(c.Received.ByKind), el.Round(time.Millisecond))
		return c
	}
	deletesOnly := func(t *testing.T, c faultproxy.Counts) (del, post int64) {
		t.Helper()
		del, post = c.Received.ByKind[faultproxy.KindDelete], c.Received.ByKind[faultproxy.KindDeleteMany]
		if c.Received.Total != del+post {
			t.Errorf("trim made other requests than deletes: %s", s3fFmt(c.Received.ByKind))
		}
		return del, post
	}

	t.Run("listBlocks", func(t *testing.T) {
		s, bucket := setup(t, "--listBlocks")
		s3fWaitSurvey(t, s, size, 30*time.Second)
		p.ResetCounts()
		s3fNbdsh(t, s, writeScript)
		s3fExpect(t, p, "writing 5 blocks", map[faultproxy.Kind]int64{faultproxy.KindPut: int64(len(stored))})
		if got := len(bucketKeys(t, gw, bucket)); got != len(stored)+1 {
			t.Fatalf("bucket holds %d keys, want %d blocks and the mount flag", got, len(stored))
		}
		c := trimAll(t, s)
		del, post := deletesOnly(t, c)
		// What the volume sends: per trim request, zeroing batches of
		// 1000 blocks from its start; a batch goes down only if it holds
		// a block not known zero. Blocks 0, 1 and 999 share one.
		batches := map[[2]int]bool{}
		for _, b := range stored {
			batches[[2]int{b / perTrim, (b % perTrim) / 1000}] = true
		}
		t.Logf("%d stored blocks in %d zeroing batches", len(stored), len(batches))
		if del+post < 1 || del+post > int64(len(stored)) {
			t.Errorf("trim made %d DELETE and %d POST delete requests for %d stored blocks, want 1 to %d",
				del, post, len(stored), len(stored))
		}
		checkEmpty(t, bucket)
		c = trimAll(t, s)
		if c.Received.Total != 0 {
			t.Errorf("trimming the trimmed disk made requests: %s", s3fFmt(c.Received.ByKind))
		}
		s.stop(syscall.SIGTERM)
	})

	t.Run("noListBlocks", func(t *testing.T) {
		s, bucket := setup(t)
		p.ResetCounts()
		s3fNbdsh(t, s, writeScript)
		s3fExpect(t, p, "writing 5 blocks", map[faultproxy.Kind]int64{faultproxy.KindPut: int64(len(stored))})
		c := trimAll(t, s)
		del, post := deletesOnly(t, c)
		// Every block but the 5 written is unknown: all go down in
		// batches of at most 1000, and each trim request may cut one
		// batch short.
		lo := int64((nb + 999) / 1000)
		hi := lo + size/(2<<30)
		if del != 0 || post < lo || post > hi {
			t.Errorf("trim made %d DELETE and %d POST delete requests, want 0 and %d to %d", del, post, lo, hi)
		}
		checkEmpty(t, bucket)
		c = trimAll(t, s)
		if c.Received.Total != 0 {
			t.Errorf("trimming the trimmed disk made requests: %s", s3fFmt(c.Received.ByKind))
		}
		s.stop(syscall.SIGTERM)
	})

	// A store without multi-object delete (501 NotImplemented, as Google
	// Cloud Storage answered until 2026): after the first refusal, blocks
	// are deleted one request each — by trims and by --erase.
	t.Run("noBulkDelete", func(t *testing.T) {
		p.SetFaults(faultproxy.Faults{NotImplemented: 1, Kinds: []faultproxy.Kind{faultproxy.KindDeleteMany}})
		defer p.SetFaults(faultproxy.Faults{})
		s, bucket := setup(t, "--listBlocks")
		s3fWaitSurvey(t, s, size, 30*time.Second)
		p.ResetCounts()
		s3fNbdsh(t, s, writeScript)
		s3fExpect(t, p, "writing 5 blocks", map[faultproxy.Kind]int64{faultproxy.KindPut: int64(len(stored))})
		del, post := deletesOnly(t, trimAll(t, s))
		if del != int64(len(stored)) || post != 1 {
			t.Errorf("trim made %d DELETE and %d POST delete requests, want %d and 1 (refused)", del, post, len(stored))
		}
		checkEmpty(t, bucket)
		s3fNbdsh(t, s, writeScript)
		s.stop(syscall.SIGTERM)
		if log := s.logText(); !strings.Contains(log, "no multi-object delete") {
			t.Errorf("the log does not say the store has no multi-object delete:\n%s", log)
		}

		p.ResetCounts()
		out, err := s3backerOut(t, "", append(s3Flags(gw, p.URL+"/"), append(geometry, "--erase", "--force", bucket)...)...)
		if err != nil || !strings.Contains(out, fmt.Sprintf("erased %d blocks", len(stored))) {
			t.Fatalf("erase: %v\n%s", err, out)
		}
		if c := p.Counts().Received.ByKind; c[faultproxy.KindDelete] < int64(len(stored)) || c[faultproxy.KindDeleteMany] != 1 {
			t.Errorf("erase: S3 requests %s, want one POST delete (refused) and a DELETE per block", s3fFmt(c))
		}
		if keys := bucketKeys(t, gw, bucket); len(keys) != 0 {
			t.Errorf("after erase the bucket holds %v", keys)
		}
	})
}

// s3fWorkload is the nbdsh script of TestS3Faults: a random mix of writes,
// zeroes, trims and reads at unaligned offsets, checked against a model of
// the disk. The model is updated only when a command succeeds; a write that
// fails leaves its range unknown (it may or may not have landed) until a
// later write succeeds over it. At the end it flushes, saves the model and
// the unknown mask, and prints its tallies as JSON.
const s3fWorkload = `
import json, random
rng = random.Random(SEED)
model = bytearray(SIZE)
unknown = bytearray(SIZE)
ok, fail, errors, mismatches = {}, {}, [], []

def rand_range():
    if rng.random() < 0.3:  # whole blocks: the bulk paths
        b = rng.randrange(SIZE // BS)
        return b * BS, rng.randint(1, min(4, SIZE // BS - b)) * BS
    off = rng.randrange(SIZE)
    return off, rng.randint(1, min(3 * BS, SIZE - off))

def check(i, off, got):
    want = model[off:off + len(got)]
    u = unknown[off:off + len(got)]
    if u.count(0) != len(u):
        got = bytearray(got)
        for j in range(len(u)):
            if u[j]:
                got[j] = want[j]
    if got != want:
        j = next(j for j in range(len(got)) if got[j] != want[j])
        mismatches.append("command %d: read of %d bytes at %d differs first at byte %d" % (i, len(got), off, off + j))

for i in range(NCMD):
    op = rng.choices(["pwrite", "zeropwrite", "zero", "trim", "pread"], weights=[36, 4, 12, 8, 40])[0]
    off, n = rand_range()
    flags = nbd.CMD_FLAG_FUA if rng.random() < 0.1 else 0
    try:
        if op == "pwrite":
            buf = rng.randbytes(n)
            h.pwrite(buf, off, flags)
        elif op == "zeropwrite":
            buf = bytes(n)
            h.pwrite(buf, off, flags)
        elif op == "zero":
            buf = bytes(n)
            h.zero(n, off, flags)
        elif op == "trim":
            buf = bytes(n)
            h.trim(n, off, flags)
        else:
            check(i, off, h.pread(n, off))
        if op != "pread":
            model[off:off + n] = buf
            unknown[off:off + n] = bytes(n)
        ok[op] = ok.get(op, 0) + 1
    except nbd.Error as e:
        fail[op] = fail.get(op, 0) + 1
        errors.append("command %d (%s of %d at %d): %s" % (i, op, n, off, e))
        if op != "pread":
            unknown[off:off + n] = b"\x01" * n

flushed = True
try:
    h.flush()
except nbd.Error as e:
    flushed = False
    errors.append("final flush: %s" % e)
open(OUT + ".model", "wb").write(model)
open(OUT + ".unknown", "wb").write(unknown)
print(json.dumps({"ok": ok, "fail": fail, "errors": errors[:20], "mismatches": mismatches[:20],
                  "nmismatches": len(mismatches), "unknown": SIZE - unknown.count(0), "flushed": flushed}))
`

// Under a steady rain of S3 failures (throttling, resets before and after
// the request took effect, truncated answers, stalls), a random workload
// sees its data: retries hide the failures, every command that succeeded
// is on the disk after a restart, and zero blocks are still never stored.
func TestS3Faults(t *testing.T) {
	need(t, "nbdsh", "nbdcopy", "nbdinfo")
	gw := versitygw.Shared(t)
	t.Run("workload", func(t *testing.T) { s3fWorkloadTest(t, gw) })
	t.Run("truncated200", func(t *testing.T) { s3fTruncatedTest(t, gw) })
}

// s3fRetryFlags make retries quick but persistent: 10 ms doubling up to
// 20 s of pauses in all, and 5 s for one attempt.
var s3fRetryFlags = []string{"--timeout=5", "--initialRetryPause=10", "--maxRetryPause=20000"}

func s3fWorkloadTest(t *testing.T, gw *versitygw.Server) {
	p := faultproxy.Start(t, gw.URL)
	bucket := gw.NewBucket(t)
	const (
		size = 16 << 20
		bs   = 64 << 10
		nb   = size / bs
		ncmd = 600
		seed = 20240611
	)
	flags := append([]string{
		"--size=16M", "--blockSize=64k",
		"--debug", // one "retrying" line per retry
	}, s3fRetryFlags...)
	s := s3fStart(t, gw, p, bucket, flags...)
	faults := faultproxy.Faults{
		SlowDown: 0.10, TooManyRequests: 0.05,
		ResetBefore: 0.05, ResetAfter: 0.05, Truncate: 0.03,
		Stall: 0.005, StallFor: 500 * time.Millisecond, // well under --timeout
		Seed: seed,
	}
	p.ResetCounts()
	p.SetFaults(faults)

	out := filepath.Join(t.TempDir(), "workload")
	script := fmt.Sprintf("SEED, SIZE, BS, NCMD, OUT = %d, %d, %d, %d, %q\n", seed, size, bs, ncmd, out) + s3fWorkload
	start := time.Now()
	res := s3fNbdsh(t, s, script)
	elapsed := time.Since(start)
	p.SetFaults(faultproxy.Faults{})
	c := p.Counts()

	var r struct {
		OK, Fail             map[string]int
		Errors, Mismatches   []string
		NMismatches, Unknown int
		Flushed              bool
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(res)), &r); err != nil {
		t.Fatalf("workload output: %v\n%s", err, res)
	}
	nfail := 0
	for _, n := range r.Fail {
		nfail += n
	}
	t.Logf("workload of %d commands in %v: succeeded %v, failed %v, %d bytes left unknown",
		ncmd, elapsed.Round(time.Millisecond), r.OK, r.Fail, r.Unknown)
	t.Logf("S3 requests received %s; forwarded %s", s3fFmt(c.Received.ByKind), s3fFmt(c.Forwarded.ByKind))
	t.Logf("faults injected: %v", c.Injected)
	for _, e := range r.Errors {
		t.Logf("failed: %s", e)
	}
	if r.NMismatches > 0 {
		t.Errorf("%d reads differ from the model; the first:\n%s", r.NMismatches, strings.Join(r.Mismatches, "\n"))
	}
	if nfail*50 > ncmd {
		t.Errorf("%d of %d commands failed for good (more than 2%%) despite retries", nfail, ncmd)
	}
	if !r.Flushed {
		t.Error("the final flush failed")
	}
	for _, f := range []faultproxy.Fault{
		faultproxy.SlowDown, faultproxy.TooManyRequests, faultproxy.ResetBefore,
		faultproxy.ResetAfter, faultproxy.Truncate, faultproxy.Stall,
	} {
		if c.Injected[f] == 0 {
			t.Errorf("the proxy never injected %q: the test did not test it", f)
		}
	}

	// A clean stop, with faults off, must store everything and exit 0.
	s.stop(syscall.SIGTERM)
	logs := s.logText()
	t.Logf("server log: %d retries, %d give-ups", strings.Count(logs, "msg=retrying"), strings.Count(logs, `msg="giving up"`))
	if strings.Count(logs, "msg=retrying") == 0 {
		t.Error("no retry in the server log although faults were injected")
	}

	model, err := os.ReadFile(out + ".model")
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := os.ReadFile(out + ".unknown")
	if err != nil {
		t.Fatal(err)
	}
	if len(model) != size || len(unknown) != size {
		t.Fatalf("model of %d bytes and mask of %d, want %d", len(model), len(unknown), size)
	}

	// A fresh server, straight to the gateway, sees everything that was
	// acknowledged.
	s = startWith(t, false, append(s3Flags(gw, ""), "--size=16M", "--blockSize=64k"), bucket)
	disk := filepath.Join(t.TempDir(), "disk")
	run(t, "nbdcopy", s.URI, disk)
	s.stop(syscall.SIGTERM)
	got, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i := range size {
		if unknown[i] == 0 && got[i] != model[i] {
			if bad < 5 {
				t.Errorf("byte %d (block %d) is %#x after restart, want %#x", i, i/bs, got[i], model[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d acknowledged bytes differ after restart", bad)
	}

	// Blocks whose content is known: stored if and only if not zero.
	namer := blockkey.Namer{NumBlocks: nb}
	keys := map[string]bool{}
	for _, k := range bucketKeys(t, gw, bucket) {
		keys[k] = true
	}
	if keys[mountFlag] {
		t.Error("mount flag left after a clean stop")
	}
	checked, zero := 0, make([]byte, bs)
	for b := range nb {
		if bytes.IndexByte(unknown[b*bs:(b+1)*bs], 1) >= 0 {
			continue
		}
		checked++
		isZero := bytes.Equal(model[b*bs:(b+1)*bs], zero)
		if k := namer.Name(uint64(b)); keys[k] == isZero {
			t.Errorf("block %d: zero=%v but stored=%v", b, isZero, keys[k])
		}
	}
	t.Logf("%d of %d blocks fully known; bucket holds %d objects (%v)", checked, nb, len(keys), slices.Sorted(maps.Keys(keys))[:min(3, len(keys))])
}

// An answer cut short after a 200 status line is as transient as a reset
// connection: the request may have taken effect, but every s3backer request
// is idempotent, so it is retried. Here half the answers to listings (the
// --listBlocks survey) and to bulk deletes are truncated; the survey must
// still complete and the bulk zeroing still succeed.
func s3fTruncatedTest(t *testing.T, gw *versitygw.Server) {
	p := faultproxy.Start(t, gw.URL)
	bucket := gw.NewBucket(t)
	const size, bs = 4 << 20, 64 << 10
	p.SetFaults(faultproxy.Faults{
		Truncate: 0.5,
		Kinds:    []faultproxy.Kind{faultproxy.KindList, faultproxy.KindDeleteMany},
		Seed:     7,
	})
	s := s3fStart(t, gw, p, bucket, append([]string{"--size=4M", "--blockSize=64k", "--listBlocks"}, s3fRetryFlags...)...)
	s3fWaitSurvey(t, s, size, 10*time.Second)
	listTrunc := p.Counts().Injected[faultproxy.Truncate]
	s3fNbdsh(t, s, fmt.Sprintf("BS = %d\nfor b in range(2, 40):\n    h.pwrite(%s, b * BS)\nh.flush()\n", bs, s3fBlockDataPy))
	p.ResetCounts()
	if out, err := runOut("nbdsh", "-u", s.URI, "-c", "h.zero(h.get_size(), 0, nbd.CMD_FLAG_FUA)"); err != nil {
		t.Fatalf("zeroing the disk with truncated DeleteObjects answers: %v\n%s\nrequests %s, injected %v; server log:\n%s",
			err, out, s3fFmt(p.Counts().Received.ByKind), p.Counts().Injected, s3fKill(s))
	}
	c := p.Counts()
	t.Logf("%d truncated listings; bulk zero: requests %s, %d truncated", listTrunc,
		s3fFmt(c.Received.ByKind), c.Injected[faultproxy.Truncate])
	if listTrunc == 0 || c.Injected[faultproxy.Truncate] == 0 {
		t.Errorf("no truncation injected (listings %d, deletes %d): nothing tested", listTrunc, c.Injected[faultproxy.Truncate])
	}
	p.SetFaults(faultproxy.Faults{})
	if got := bucketKeys(t, gw, bucket); !slices.Equal(got, []string{mountFlag}) {
		t.Errorf("after zeroing the disk the bucket holds %d keys %v...", len(got), head(got))
	}
	s.stop(syscall.SIGTERM)
}
