package codec

import "sync"

// bufPool recycles object-sized buffers: every read needs one, and at
// 1 MiB blocks allocating each would dominate the garbage collector's work.
type bufPool struct {
	size int
	p    sync.Pool
}

func newBufPool(size int) *bufPool {
	bp := &bufPool{size: size}
	bp.p.New = func() any {
		b := make([]byte, size)
		return &b
	}
	return bp
}

// get returns a buffer of exactly size bytes (contents undefined).
func (bp *bufPool) get() *[]byte {
	b := bp.p.Get().(*[]byte)
	*b = (*b)[:bp.size]
	return b
}

func (bp *bufPool) put(b *[]byte) { bp.p.Put(b) }
