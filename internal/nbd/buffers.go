package nbd

import (
	"math/bits"
	"sync"
)

// Payload buffers are recycled through one sync.Pool per power-of-two size
// class, so a steady stream of same-sized requests allocates nothing.

const (
	minClassShift = 12 // 4 KiB: smaller payloads still take a 4 KiB buffer
	maxClassShift = 30 // maxPayloadLimit
)

var bufferPools [maxClassShift + 1]sync.Pool

// classShift returns the size class (log2 of the buffer capacity) for n bytes.
func classShift(n int) int {
	if n <= 1<<minClassShift {
		return minClassShift
	}
	return bits.Len(uint(n - 1))
}

// classSize is the capacity of the buffer getBuffer(n) returns; it is what a
// request is charged against the server's byte budget.
func classSize(n int) int { return 1 << classShift(n) }

// getBuffer returns a buffer of length n (0 <= n <= maxPayloadLimit). Its
// contents are arbitrary: callers overwrite it entirely.
func getBuffer(n int) *[]byte {
	shift := classShift(n)
	if p, ok := bufferPools[shift].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<shift)
	return &b
}

// putBuffer returns a buffer obtained from getBuffer to its pool.
func putBuffer(p *[]byte) {
	if p == nil {
		return
	}
	c := cap(*p)
	shift := bits.Len(uint(c)) - 1
	if c == 0 || c != 1<<shift || shift < minClassShift || shift > maxClassShift {
		return // not one of ours
	}
	bufferPools[shift].Put(p)
}
