package nbd

import (
	"bytes"
	"context"
	"sync"
	"syscall"
)

// memDevice is an in-memory Device for tests. Zero sectors (512 bytes) are
// reported as hole+zero by Extents. A fast zero that must also allocate
// (FAST_ZERO with NO_HOLE) fails with ENOTSUP, like a sparse store would.
type memDevice struct {
	blockSize int
	readOnly  bool
	// hook, if set, runs before every operation, outside the lock; it may
	// block (to hold a request in flight) or return an error to inject.
	hook func(ctx context.Context, op string, off, length int64) error

	mu        sync.Mutex
	data      []byte
	ops       []devOp // every operation that reached the device
	maxActive int
	active    int
}

// devOp records one call for assertions.
type devOp struct {
	op     string
	off    int64
	length int64
	fua    bool
	zf     ZeroFlags
}

const sectorSize = 512

func newMemDevice(size int64) *memDevice {
	return &memDevice{blockSize: 4096, data: make([]byte, size)}
}

func (d *memDevice) Size() int64    { return int64(len(d.data)) }
func (d *memDevice) BlockSize() int { return d.blockSize }
func (d *memDevice) ReadOnly() bool { return d.readOnly }

// enter records op and runs the hook; the returned func ends the operation.
func (d *memDevice) enter(ctx context.Context, o devOp) (func(), error) {
	d.mu.Lock()
	d.ops = append(d.ops, o)
	d.active++
	d.maxActive = max(d.maxActive, d.active)
	d.mu.Unlock()
	done := func() {
		d.mu.Lock()
		d.active--
		d.mu.Unlock()
	}
	if d.hook != nil {
		if err := d.hook(ctx, o.op, o.off, o.length); err != nil {
			done()
			return nil, err
		}
	}
	return done, nil
}

func (d *memDevice) ReadAt(ctx context.Context, p []byte, off int64) error {
	done, err := d.enter(ctx, devOp{op: "read", off: off, length: int64(len(p))})
	if err != nil {
		return err
	}
	defer done()
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(p, d.data[off:])
	return nil
}

func (d *memDevice) WriteAt(ctx context.Context, p []byte, off int64, fua bool) error {
	done, err := d.enter(ctx, devOp{op: "write", off: off, length: int64(len(p)), fua: fua})
	if err != nil {
		return err
	}
	defer done()
	d.mu.Lock()
	defer d.mu.Unlock()
	copy(d.data[off:], p)
	return nil
}

func (d *memDevice) Zero(ctx context.Context, off, length int64, f ZeroFlags) error {
	done, err := d.enter(ctx, devOp{op: "zero", off: off, length: length, fua: f.FUA, zf: f})
	if err != nil {
		return err
	}
	defer done()
	if f.Fast && f.NoHole {
		return syscall.ENOTSUP
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.data[off : off+length])
	return nil
}

func (d *memDevice) Trim(ctx context.Context, off, length int64, fua bool) error {
	done, err := d.enter(ctx, devOp{op: "trim", off: off, length: length, fua: fua})
	if err != nil {
		return err
	}
	defer done()
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.data[off : off+length])
	return nil
}

func (d *memDevice) Flush(ctx context.Context) error {
	done, err := d.enter(ctx, devOp{op: "flush"})
	if err != nil {
		return err
	}
	done()
	return nil
}

func (d *memDevice) Cache(ctx context.Context, off, length int64) error {
	done, err := d.enter(ctx, devOp{op: "cache", off: off, length: length})
	if err != nil {
		return err
	}
	done()
	return nil
}

func (d *memDevice) Extents(ctx context.Context, off, length int64) ([]Extent, error) {
	done, err := d.enter(ctx, devOp{op: "extents", off: off, length: length})
	if err != nil {
		return nil, err
	}
	defer done()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Extent
	end := off + length
	for p := off; p < end; {
		s := p - p%sectorSize
		e := min(s+sectorSize, end, int64(len(d.data)))
		zero := allZero(d.data[s:min(s+sectorSize, int64(len(d.data)))])
		if n := len(out); n > 0 && out[n-1].Zero == zero {
			out[n-1].Length += e - p
		} else {
			out = append(out, Extent{Length: e - p, Hole: zero, Zero: zero})
		}
		p = e
	}
	return out, nil
}

// opsOf returns the recorded operations named op.
func (d *memDevice) opsOf(op string) []devOp {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []devOp
	for _, o := range d.ops {
		if o.op == op {
			out = append(out, o)
		}
	}
	return out
}

func (d *memDevice) bytesAt(off, n int64) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.data[off : off+n])
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
