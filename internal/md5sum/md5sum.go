// Package md5sum computes MD5 digests for many goroutines at once, as the
// S3 path does for every block: the ETag check of a read and the
// Content-MD5 of a write.
//
// MD5 is the largest CPU cost of that path, and one MD5 cannot be made
// faster: each 64-byte step depends on the last. Independent digests can
// run side by side in the lanes of one vector register, though, and
// github.com/minio/md5-simd does that (8 lanes with AVX2, 16 with AVX-512)
// in one server goroutine fed 32 KiB at a time. On the 2-core development
// machine (AVX-512), hashing 256 KiB or 1 MiB buffers costs, in CPU seconds
// per GB: crypto/md5 1.26; md5-simd, 8 or 16 buffers at once 0.5, 4 at once
// 0.93, 2 at once 1.6, one alone 1.9. So the multi-buffer path pays only
// for 4 buffers or more at once.
//
// Reads rarely overlap by themselves: a body arrives in one burst and is
// hashed in a millisecond, so even with dozens of GETs in flight, one or
// two bodies are being hashed at any moment. A Ticket, taken when a GET
// starts, lets the first body that arrives wait (at most maxWait) for the
// bodies of the other GETs in flight (longer for larger bodies), and the batch is hashed together.
// It waits only when that pays and costs little: when enough other GETs
// are in flight to make a batch, and bodies have lately been arriving fast
// enough to fill one within maxWait, that is, when the disk is being read
// at hundreds of MB/s, where CPU is what limits it. A slower stream of
// reads (one at a time, or a remote S3's latency) is hashed at once, as
// before: there would be nothing to gain from waiting, only latency.
package md5sum

import (
	"crypto/md5"
	"sync"
	"sync/atomic"
	"time"

	md5simd "github.com/minio/md5-simd"
)

// Size is the length of an MD5 digest.
const Size = md5.Size

const (
	// minSIMD is the fewest buffers hashed together on the multi-buffer
	// path; smaller batches, and Sum while fewer are in progress, use
	// crypto/md5 on every core.
	minSIMD = 4
	// maxBatch: 8 lanes already give the best cost per byte measured.
	maxBatch = 8
	// maxWait bounds how long a body waits for others to join its batch.
	// It is spent only while at least minSIMD reads are in flight and
	// bodies have lately arrived at least minSIMD-1 per maxWait (600 a
	// second, 150 MB/s of 256 KiB blocks): there, CPU is what limits the
	// reads, and their latency is mostly queueing already. Longer windows
	// batch more at 1 MiB blocks (fewer bodies a second) but add latency.
	maxWait = 5 * time.Millisecond
	// waitUnit: bodies larger than this arrive proportionally fewer per
	// second at the same MB/s, so their window grows with their size, up
	// to maxWaitLarge (10 ms at 1 MiB gave 13 % more cold-read MB/s and
	// 17 % less CPU per GiB than 5 ms, interleaved runs on versitygw).
	waitUnit     = 256 << 10
	maxWaitLarge = 2 * maxWait
	// minLen: shorter buffers are not worth the round trip to the server.
	minLen = 16 << 10
	// chunk is what the md5-simd server takes from a hasher at a time.
	chunk = 32 << 10
	// maxIdle bounds the idle hashers kept: each registered hasher costs
	// the server a little on every round.
	maxIdle = 2 * maxBatch
)

var (
	active atomic.Int32 // Sum calls in progress
	waits  atomic.Int64 // batches that waited for more buffers (tests)

	startOnce sync.Once
	server    md5simd.Server
	idle      chan md5simd.Hasher
)

// Sum returns the MD5 digest of b. It is safe for concurrent use, and
// cheaper per byte while several goroutines call it at once.
func Sum(b []byte) [Size]byte {
	if len(b) < minLen {
		return md5.Sum(b)
	}
	n := active.Add(1)
	defer active.Add(-1)
	if n < minSIMD {
		return md5.Sum(b)
	}
	h := getHasher()
	// A hasher's Write fails only once it is closed, and this one is not.
	_, _ = h.Write(b)
	var sum [Size]byte
	h.Sum(sum[:0])
	putHasher(h)
	return sum
}

// waitFor is how long a body of n bytes may wait for others.
func waitFor(n int) time.Duration {
	return min(maxWait*time.Duration(max(1, n/waitUnit)), maxWaitLarge)
}

// batchState gathers the buffers of Tickets into batches.
type batchState struct {
	mu       sync.Mutex
	expected int    // Tickets out, neither summed nor cancelled
	batch    []*job // the batch forming, led by its first job
	wake     chan struct{}
	last     time.Time     // when the last buffer arrived
	gap      time.Duration // moving average of the time between arrivals
}

var batcher batchState

type job struct {
	b    []byte
	sum  [Size]byte
	self bool // hash b yourself
	done chan struct{}
}

// A Ticket announces a buffer to hash that is on its way (the body of a
// GET under way), so that other buffers wait for it to batch with it. It
// must end with exactly one Sum or Cancel.
type Ticket struct{ used bool }

// Expect returns a Ticket for a buffer to come.
func Expect() *Ticket {
	batcher.mu.Lock()
	batcher.expected++
	batcher.mu.Unlock()
	return &Ticket{}
}

// Cancel says the buffer will not come (the GET failed). It does nothing
// after Sum or Cancel.
func (t *Ticket) Cancel() {
	if t == nil || t.used {
		return
	}
	t.used = true
	batcher.mu.Lock()
	batcher.expected--
	batcher.ready()
	batcher.mu.Unlock()
}

// Sum returns the MD5 digest of b, hashed with the buffers of other
// Tickets that arrive within its window, as long as more are expected. A nil
// Ticket hashes b at once.
func (t *Ticket) Sum(b []byte) [Size]byte {
	if t == nil {
		return md5.Sum(b)
	}
	if t.used {
		panic("md5sum: Ticket used twice")
	}
	t.used = true
	j := &job{b: b, done: make(chan struct{})}
	bt := &batcher
	bt.mu.Lock()
	bt.expected--
	now := time.Now()
	// An idle spell counts as a long gap, not as an endless one.
	bt.gap += (min(now.Sub(bt.last), 10*maxWait) - bt.gap) / 8
	bt.last = now
	window := waitFor(len(b))
	if len(b) < minLen || len(bt.batch) == 0 && (bt.expected+1 < minSIMD || bt.gap*(minSIMD-1) > window) {
		// Too short; or too few others in flight to make a batch, or
		// they have been arriving too slowly to fill one soon.
		bt.ready()
		bt.mu.Unlock()
		return md5.Sum(b)
	}
	bt.batch = append(bt.batch, j)
	lead := len(bt.batch) == 1
	if lead {
		bt.wake = make(chan struct{}, 1)
	}
	wake := bt.wake
	bt.ready()
	bt.mu.Unlock()

	if !lead {
		<-j.done
		if j.self {
			return md5.Sum(b)
		}
		return j.sum
	}

	select {
	case <-wake: // full, or nothing more to wait for
	default:
		waits.Add(1)
		timer := time.NewTimer(window)
		select {
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
	bt.mu.Lock()
	jobs := bt.batch
	bt.batch = nil
	bt.mu.Unlock()

	if len(jobs) < minSIMD {
		// Each hashes its own, on as many cores as there are.
		for _, o := range jobs[1:] {
			o.self = true
			close(o.done)
		}
		return md5.Sum(b)
	}
	hashBatch(jobs)
	for _, o := range jobs[1:] {
		close(o.done)
	}
	return j.sum
}

// ready wakes the leader of the forming batch once the batch is full, or
// nothing more is expected, or too little to make it worth hashing
// together. Called with bt.mu held.
func (bt *batchState) ready() {
	if n := len(bt.batch); n > 0 && (n >= maxBatch || bt.expected == 0 || n+bt.expected < minSIMD) {
		select {
		case bt.wake <- struct{}{}:
		default:
		}
	}
}

// hashBatch hashes every job's buffer on the multi-buffer path, feeding
// the hashers in turn a chunk at a time so that the server always has all
// of them to fill its lanes with.
func hashBatch(jobs []*job) {
	hs := make([]md5simd.Hasher, len(jobs))
	for i := range hs {
		hs[i] = getHasher()
	}
	for off := 0; ; off += chunk {
		more := false
		for i, j := range jobs {
			if off < len(j.b) {
				_, _ = hs[i].Write(j.b[off:min(off+chunk, len(j.b))])
				more = true
			}
		}
		if !more {
			break
		}
	}
	for i, j := range jobs {
		hs[i].Sum(j.sum[:0])
		putHasher(hs[i])
	}
}

func getHasher() md5simd.Hasher {
	startOnce.Do(func() {
		// The server is one goroutine for the life of the process.
		server = md5simd.NewServer()
		idle = make(chan md5simd.Hasher, maxIdle)
	})
	select {
	case h := <-idle:
		return h
	default:
		return server.NewHash()
	}
}

// putHasher resets h for its next user and keeps it, or closes it (which
// unregisters it from the server) when enough are kept already.
func putHasher(h md5simd.Hasher) {
	h.Reset()
	select {
	case idle <- h:
	default:
		h.Close()
	}
}
