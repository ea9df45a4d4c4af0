package cache

import (
	"sync"
	"time"
)

// tick is a time on the cache's clock: the monotonic time since the store
// was created (time.Since, so a test's fake clock drives it too).
type tick = time.Duration

const never tick = 1<<63 - 1

// state is where an entry is in its life; see the package documentation.
type state uint8

const (
	// stNew: a writer created the entry and is filling its slot; it holds
	// dmu, so readers wait for the data.
	stNew state = iota
	// stLoading: being read from below; loaded is closed when done.
	// Readers and writers wait for it.
	stLoading
	// stClean: same data as below; in an LRU list, evictable when unpinned.
	stClean
	// stDirty: newer than below; in exactly one write-back queue (q).
	stDirty
	// stUploading: a worker is writing it below (in the busy list). A
	// write meanwhile raises wseq above upSeq: the worker then queues it
	// again instead of marking it clean.
	stUploading
)

// queue is the write-back queue a dirty entry waits in.
type queue uint8

const (
	qNone   queue = iota
	qUrgent       // someone waits for it (Flush, a synchronous write): FIFO
	qDirty        // by deadline (first write + write delay)
	qRetry        // its last upload failed: by retry time (backoff)
)

// entry is one cached block. Fields are guarded by Store.mu, except the
// slot's contents, guarded by dmu; dead is written holding both (or, on
// eviction, when nobody holds a pin) so holders of either may read it.
type entry struct {
	n     uint64
	slot  int
	state state
	q     queue
	zero  bool // the data is all zeroes (a zero write, or a zero read)
	dead  bool // removed from the cache; whoever pinned it starts over
	spec  bool // loaded by read-ahead or prefetch and not read since
	// verify: a clean block recovered from a persistent Slots, to be
	// checked below (against tag) before its first read is served.
	verify bool
	tag    string
	pins   int // readers and writers using it; pinned entries are not evicted

	wseq  uint64 // sequence number of the last write committed to the slot
	upSeq uint64 // stUploading: the wseq being uploaded

	// at: stClean last use; qDirty deadline; qRetry next attempt.
	at       tick
	failures int    // consecutive failed uploads
	attempts uint64 // uploads started
	hidx     int    // index in dirtyQ or retryQ

	prev, next *entry // LRU list (clean), urgent list (qUrgent) or busy list (uploading)

	loaded  chan struct{} // stLoading: closed when the load ends
	loadErr error         // why a load failed (set before loaded closes)

	waits []waitReq // Flush and synchronous writers waiting for an upload

	dmu sync.RWMutex // the slot's contents
}

// list is an intrusive doubly linked list of entries with a sentinel; the
// zero value is not usable: call init.
type list struct {
	root entry
	n    int
}

func (l *list) init() { l.root.next, l.root.prev = &l.root, &l.root }

func (l *list) pushFront(e *entry) {
	e.prev, e.next = &l.root, l.root.next
	l.root.next.prev = e
	l.root.next = e
	l.n++
}

func (l *list) pushBack(e *entry) {
	e.prev, e.next = l.root.prev, &l.root
	l.root.prev.next = e
	l.root.prev = e
	l.n++
}

func (l *list) remove(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
	l.n--
}

func (l *list) front() *entry {
	if l.n == 0 {
		return nil
	}
	return l.root.next
}

func (l *list) back() *entry {
	if l.n == 0 {
		return nil
	}
	return l.root.prev
}

// before returns the entry before e (towards the front), nil at the front.
func (l *list) before(e *entry) *entry {
	if e.prev == &l.root {
		return nil
	}
	return e.prev
}

// moveToFront makes e the most recently used.
func (l *list) moveToFront(e *entry) {
	if l.root.next == e {
		return
	}
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = &l.root, l.root.next
	l.root.next.prev = e
	l.root.next = e
}

// entryHeap is a min-heap of entries by at (container/heap).
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hidx = -1
	return e
}

// flushWait is one Flush, FlushBlocks or synchronous write waiting for
// uploads: done closes when every upload it waits for succeeded, or at the
// first that failed (err). pending counts one more while it is being set
// up, so that it cannot complete before every upload is attached; the
// waiter resolves that one when it starts waiting.
type flushWait struct {
	pending int
	err     error
	done    chan struct{}
	closed  bool
}

func newFlushWait() *flushWait { return &flushWait{pending: 1, done: make(chan struct{})} }

// resolve records the outcome of one awaited upload (with Store.mu held).
func (w *flushWait) resolve(err error) {
	w.pending--
	if err != nil && w.err == nil {
		w.err = err
	}
	if !w.closed && (w.pending == 0 || w.err != nil) {
		w.closed = true
		close(w.done)
	}
}

// waitReq: w waits until an upload of data at least as new as seq
// succeeds, or one that started after the wait was attached (attempt
// number > after) fails: a failure older than the wait does not count.
type waitReq struct {
	w     *flushWait
	seq   uint64
	after uint64
}

// zeroOp is a bulk zero passing through to the store below; its blocks
// are in Store.zeroing until it ends (done closed).
type zeroOp struct{ done chan struct{} }

// blockRange is a queued Prefetch.
type blockRange struct{ first, count uint64 }
