package nbddev

import (
	"context"
	"sync"

	"github.com/s3backer-go/s3backer/internal/nbd"
)

// memDevice is an in-memory nbd.Device that records trims and flushes.
type memDevice struct {
	mu      sync.Mutex
	data    []byte
	trims   [][2]int64 // offset, length
	flushes int
}

func newMemDevice(size int64) *memDevice { return &memDevice{data: make([]byte, size)} }

func (d *memDevice) Size() int64    { return int64(len(d.data)) }
func (d *memDevice) BlockSize() int { return 4096 }
func (d *memDevice) ReadOnly() bool { return false }

func (d *memDevice) ReadAt(_ context.Context, p []byte, off int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(p, d.data[off:])
	return nil
}

func (d *memDevice) WriteAt(_ context.Context, p []byte, off int64, _ bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(d.data[off:], p)
	return nil
}

func (d *memDevice) zero(off, length int64) {
	clear(d.data[off : off+length])
}

func (d *memDevice) Zero(_ context.Context, off, length int64, _ nbd.ZeroFlags) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.zero(off, length)
	return nil
}

func (d *memDevice) Trim(_ context.Context, off, length int64, _ bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.zero(off, length)
	d.trims = append(d.trims, [2]int64{off, length})
	return nil
}

func (d *memDevice) Flush(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushes++
	return nil
}

func (d *memDevice) Cache(context.Context, int64, int64) error { return nil }

func (d *memDevice) Extents(_ context.Context, _, length int64) ([]nbd.Extent, error) {
	return []nbd.Extent{{Length: length}}, nil
}

// snapshot copies [off, off+n).
func (d *memDevice) snapshot(off, n int64) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.data[off:off+n]...)
}
