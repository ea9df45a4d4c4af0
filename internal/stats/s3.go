package stats

import (
	"sync/atomic"
	"time"
)

// Op is an object-store operation, as the metered backend sees it.
type Op int

const (
	OpGet Op = iota
	OpHead
	OpPut
	OpDelete
	OpDeleteMany
	OpList
	numOps
)

var opNames = [numOps]string{"get", "head", "put", "delete", "delete_many", "list"}

func (o Op) String() string { return opNames[o] }

// Outcome is how one request ended. The HTTP ones follow s3backer's
// stats counters (http_unauthorized, http_stale, http_4xx_error, ...); the
// transport ones its curl_* counters.
type Outcome int

const (
	OK            Outcome = iota
	NotFound              // 404 (a missing block reads as zeroes: not an error)
	NotModified           // 304 to a conditional GET (the block was verified)
	Stale                 // 412 precondition failed
	Unauthorized          // 401
	Forbidden             // 403
	Redirect              // 301, 302, 307, 308
	HTTP3xx               // other 3xx
	HTTP4xx               // other 4xx
	HTTP5xx               // 5xx
	HTTPOther             // any other status (say, a 200 whose body broke off)
	Timeout               // no answer in time
	ConnectFailed         // the connection could not be made
	HostUnknown           // the name did not resolve
	Canceled              // the caller gave up (a write made obsolete, a stop)
	OtherError            // anything else
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "not_found", "not_modified", "stale", "unauthorized", "forbidden",
	"redirect", "http_3xx", "http_4xx", "http_5xx", "http_other", "timeout", "connect_failed", "host_unknown",
	"canceled", "error"}

func (o Outcome) String() string { return outcomeNames[o] }

// LatencyBuckets are the upper bounds, in seconds, of the request latency
// histograms: from a fast local gateway to a request near --timeout.
var LatencyBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// cell counts the requests of one operation with one outcome.
type cell struct {
	count   atomic.Uint64
	nanos   atomic.Uint64
	buckets [len(LatencyBuckets)]atomic.Uint64 // not cumulative; +Inf is count minus their sum
}

// S3 counts object-store requests: every attempt, retries included, as
// s3backer's http_* counters do. The metered backend feeds it.
type S3 struct {
	used     atomic.Bool
	cells    [numOps][numOutcomes]cell
	inFlight [numOps]atomic.Int64
	up, down atomic.Uint64 // object bytes sent and received
	deleted  atomic.Uint64 // block keys removed by successful deletes, single or bulk
	mismatch atomic.Uint64 // conditional GETs that found the object changed
}

// Start counts a request of op as in flight; Done must follow.
func (s *S3) Start(op Op) {
	s.used.Store(true)
	s.inFlight[op].Add(1)
}

// Done records the end of a request started with Start.
func (s *S3) Done(op Op, o Outcome, d time.Duration) {
	s.inFlight[op].Add(-1)
	c := &s.cells[op][o]
	c.count.Add(1)
	c.nanos.Add(uint64(max(d, 0)))
	sec := d.Seconds()
	for i, le := range LatencyBuckets {
		if sec <= le {
			c.buckets[i].Add(1)
			break
		}
	}
}

// Sent and Received count object bytes moved (bodies, not headers).
func (s *S3) Sent(n int)     { s.up.Add(uint64(max(n, 0))) }
func (s *S3) Received(n int) { s.down.Add(uint64(max(n, 0))) }

// Deleted counts keys removed.
func (s *S3) Deleted(n int) { s.deleted.Add(uint64(max(n, 0))) }

// Mismatch counts a conditional GET (If-None-Match) answered with the
// object: it was not the version expected (s3backer's http_mismatch).
func (s *S3) Mismatch() { s.mismatch.Add(1) }

// Cell is a snapshot of one operation and outcome.
type Cell struct {
	Count   uint64
	Total   time.Duration               // summed latency
	Buckets [len(LatencyBuckets)]uint64 // per bucket, not cumulative
}

func (c Cell) sub(b Cell) Cell {
	c.Count -= b.Count
	c.Total -= b.Total
	for i := range c.Buckets {
		c.Buckets[i] -= b.Buckets[i]
	}
	return c
}

// S3Snapshot is the S3 counters at one moment.
type S3Snapshot struct {
	Used        bool // a metered backend is in the stack
	Cells       [numOps][numOutcomes]Cell
	InFlight    [numOps]int64
	Sent        uint64
	Received    uint64
	DeletedKeys uint64
	Mismatches  uint64
}

// Cell returns the counters of op with outcome o.
func (s *S3Snapshot) Cell(op Op, o Outcome) Cell { return s.Cells[op][o] }

// Count sums the requests with outcome o over the given operations.
func (s *S3Snapshot) Count(o Outcome, ops ...Op) uint64 {
	var n uint64
	for _, op := range ops {
		n += s.Cells[op][o].Count
	}
	return n
}

// CountAll sums the requests with outcome o over every operation.
func (s *S3Snapshot) CountAll(o Outcome) uint64 {
	var n uint64
	for op := range numOps {
		n += s.Cells[op][o].Count
	}
	return n
}

func (s *S3) snapshot() S3Snapshot {
	var sn S3Snapshot
	sn.Used = s.used.Load()
	for op := range numOps {
		sn.InFlight[op] = s.inFlight[op].Load()
		for o := range numOutcomes {
			c := &s.cells[op][o]
			out := &sn.Cells[op][o]
			out.Count = c.count.Load()
			out.Total = time.Duration(c.nanos.Load())
			for i := range c.buckets {
				out.Buckets[i] = c.buckets[i].Load()
			}
		}
	}
	sn.Sent, sn.Received, sn.DeletedKeys = s.up.Load(), s.down.Load(), s.deleted.Load()
	sn.Mismatches = s.mismatch.Load()
	return sn
}

func (s S3Snapshot) sub(b S3Snapshot) S3Snapshot {
	for op := range numOps {
		for o := range numOutcomes {
			s.Cells[op][o] = s.Cells[op][o].sub(b.Cells[op][o])
		}
	}
	s.Sent -= b.Sent
	s.Received -= b.Received
	s.DeletedKeys -= b.DeletedKeys
	s.Mismatches -= b.Mismatches
	return s
}
