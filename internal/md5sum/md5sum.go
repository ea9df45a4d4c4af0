// Package md5sum computes MD5 digests for many goroutines at once, as the
// S3 path does for every block: the ETag check of a read and the
// Content-MD5 of a write.
//
// MD5 is the largest CPU cost of that path, and one MD5 cannot be made
// faster: each 64-byte step depends on the last. Independent digests can
// run side by side in the lanes of one vector register, though: sumLanes
// (lanes.go) hashes 8 buffers at once. On the 2-core development machine
// (AMD EPYC, AVX-512) one goroutine hashes 5.1 GB/s of 256 KiB buffers 8
// at a time, where crypto/md5 does 0.8 GB/s (BenchmarkSumLanes); a batch
// of 2 already costs less CPU than hashing both alone.
//
// Buffers rarely overlap by themselves: a body arrives in one burst and
// is hashed in a millisecond, so even with dozens of requests in flight,
// one or two bodies are being hashed at any moment. So the first body that
// arrives may wait (at most maxWait, longer for larger bodies) for others
// to join it, and the batch is hashed together. It waits only when that
// pays and costs little: when bodies have lately been arriving fast enough
// to fill a batch within the wait (a window's worth: 50 MB/s of 256 KiB
// bodies), where hashing them alone would take a good part of a core. A slower
// stream (one request at a time, or a remote S3's latency) is hashed at
// once: there would be nothing to gain from waiting, only latency.
//
// A read announces its body when its GET starts (Expect returns a
// Ticket), and an upload says it is under way (Sending): a body waits only
// while another GET or upload is in flight, and a batch stops waiting as
// soon as every announced body has arrived and every upload under way has
// joined it (a batch of reads alone does not wait for uploads: a reader is
// waiting for it). Without that, arrivals alone would mislead: a single writer's
// next body comes only after this one is hashed and sent, so waiting for
// it would set the pace it seems to measure (one PUT per window).
package md5sum

import (
	"crypto/md5"
	"sync"
	"sync/atomic"
	"time"
)

// Size is the length of an MD5 digest.
const Size = md5.Size

const (
	// minBatch is the fewest buffers worth waiting for: the batch a body
	// waits to form, and the arrivals per wait that make waiting pay.
	// Two already pay: sumLanes hashes 2 buffers of 1 MiB in 1.6 ms of
	// CPU, crypto/md5 one in 1.3 ms. (At 4, a third of the bodies of a
	// cold read at 1 MiB blocks and half of the PUTs of a write were
	// hashed alone, at 0.4-0.7 CPU s/GiB; at 2, 1 in 30.)
	minBatch = 2
	// maxBatch: one sumLanes call.
	maxBatch = lanes
	// maxWait bounds how long a body waits for others to join its batch.
	// It is spent only while bodies have lately arrived at least
	// minBatch-1 per window (200 a second: 50 MB/s of 256 KiB blocks,
	// 100 MB/s of 1 MiB ones): there the hashing alone would cost a
	// good part of a core, and a transfer's latency is mostly queueing
	// already. Longer windows batch more at 1 MiB blocks
	// (fewer bodies a second) but add latency.
	maxWait = 5 * time.Millisecond
	// waitUnit: bodies larger than this arrive proportionally fewer per
	// second at the same MB/s, so their window grows with their size, up
	// to maxWaitLarge (10 ms at 1 MiB gave 13 % more cold-read MB/s and
	// 17 % less CPU per GiB than 5 ms, interleaved runs on versitygw).
	waitUnit     = 256 << 10
	maxWaitLarge = 2 * maxWait
	// minLen: shorter buffers are hashed at once, alone.
	minLen = 16 << 10
)

// waits counts batches that waited for more buffers, batched the buffers
// hashed in batches of two or more (tests).
var waits, batched atomic.Int64

// Sum returns the MD5 digest of b. It is safe for concurrent use, and
// cheaper per byte while other uploads are under way (Sending) or reads
// expected (Expect): b is then hashed in a batch with their bodies.
func Sum(b []byte) [Size]byte {
	return batcher.sum(b, false)
}

// waitFor is how long a body of n bytes may wait for others.
func waitFor(n int) time.Duration {
	return min(maxWait*time.Duration(max(1, n/waitUnit)), maxWaitLarge)
}

// batchState gathers the buffers of Tickets into batches.
type batchState struct {
	mu       sync.Mutex
	expected int           // Tickets out, neither summed nor cancelled
	sending  int           // uploads under way (Sending)
	forming  *batch        // nil when no batch is forming
	last     time.Time     // when the last buffer arrived
	gap      time.Duration // moving average of the time between arrivals
}

var batcher batchState

// A batch is the buffers hashed together, gathered by its first job's
// goroutine (the leader), which hashes them all.
type batch struct {
	jobs      []*job
	untracked int           // jobs that came without a Ticket
	wake      chan struct{} // the batch is complete (capacity 1)
}

type job struct {
	b    []byte
	sum  [Size]byte
	done chan struct{}
}

// A Ticket announces a buffer to hash that is on its way (the body of a
// GET under way), so that other buffers wait for it to batch with it. It
// must end with exactly one Sum or Cancel.
type Ticket struct{ used bool }

// Sending says an upload has started whose body is hashed with Sum;
// done, called once, says it has ended. Sum batches a body with those of
// other uploads under way, and hashes it at once when there are none.
func Sending() (done func()) {
	batcher.mu.Lock()
	batcher.sending++
	batcher.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			batcher.mu.Lock()
			batcher.sending--
			batcher.ready()
			batcher.mu.Unlock()
		})
	}
}

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
	return batcher.sum(b, true)
}

// sum hashes b, in a batch if one forms in time; ticketed: b comes with
// a Ticket (counted in expected).
func (bt *batchState) sum(b []byte, ticketed bool) [Size]byte {
	bt.mu.Lock()
	if ticketed {
		bt.expected--
	}
	now := time.Now()
	// An idle spell counts as a long gap, not as an endless one.
	bt.gap += (min(now.Sub(bt.last), 10*maxWait) - bt.gap) / 8
	bt.last = now
	window := waitFor(len(b))
	slow := bt.gap*(minBatch-1) > window
	if !haveLanes || len(b) < minLen || bt.forming == nil && (slow || bt.others(ticketed)+1 < minBatch) {
		// No multi-buffer MD5 here, or too short; or bodies have been
		// arriving too slowly to fill a batch soon, or too few GETs and
		// uploads are in flight to make one.
		bt.ready()
		bt.mu.Unlock()
		return md5.Sum(b)
	}
	j := &job{b: b, done: make(chan struct{})}
	bc := bt.forming
	lead := bc == nil
	if lead {
		bc = &batch{wake: make(chan struct{}, 1)}
		bt.forming = bc
	}
	bc.jobs = append(bc.jobs, j)
	if !ticketed {
		bc.untracked++
	}
	bt.ready()
	bt.mu.Unlock()

	if !lead {
		<-j.done
		return j.sum
	}

	select {
	case <-bc.wake: // full, or nothing more to wait for
	default:
		waits.Add(1)
		timer := time.NewTimer(window)
		select {
		case <-bc.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
	bt.mu.Lock()
	if bt.forming == bc {
		bt.forming = nil
	}
	jobs := bc.jobs
	bt.mu.Unlock()

	hashBatch(jobs)
	for _, o := range jobs[1:] {
		close(o.done)
	}
	return j.sum
}

// others counts the bodies that may come to join one: Tickets out, and
// uploads under way but the caller's own (an untracked caller that did not
// say Sending is not among them; a few too many only costs a wait).
// Called with bt.mu held.
func (bt *batchState) others(ticketed bool) int {
	n := bt.expected + bt.sending
	if !ticketed && bt.sending > 0 {
		n--
	}
	return n
}

// ready hands the forming batch to its leader once the batch is full, or
// every body announced has arrived and — for a batch holding an upload's
// body — every upload under way has joined it. A batch of reads does not
// wait for uploads: a reader is waiting for it. Called with bt.mu held.
func (bt *batchState) ready() {
	bc := bt.forming
	if bc == nil {
		return
	}
	if n := len(bc.jobs); n >= maxBatch || bt.expected == 0 && (bc.untracked == 0 || bt.sending <= bc.untracked) {
		// No one joins it from now on.
		bt.forming = nil
		bc.wake <- struct{}{}
	}
}

// hashBatch hashes the buffers of jobs (at most maxBatch) together.
func hashBatch(jobs []*job) {
	var bufs [maxBatch][]byte
	var sums [maxBatch][Size]byte
	for i, j := range jobs {
		bufs[i] = j.b
	}
	sumLanes(bufs[:len(jobs)], sums[:len(jobs)])
	if len(jobs) > 1 {
		batched.Add(int64(len(jobs)))
	}
	for i, j := range jobs {
		j.sum = sums[i]
	}
}
