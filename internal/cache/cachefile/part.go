package cachefile

import (
	"fmt"
	"syscall"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/cache"
)

var _ cache.PartSlots = (*File)(nil)

// WritePart makes the slot's dirty contents (block n) its data with bytes
// [off, off+len(p)) replaced by p: the part is written in place, then the
// entry with the new data CRC — computed from the old CRC and the old and
// new part (crcpart.go), so only the part is read — like Write: two
// pwrites, no sync. A crash between or during them leaves data that
// matches neither the old entry nor the new one, so the block is not
// recovered, exactly as when a whole-slot Write is cut short: a torn part
// write never looks valid.
func (f *File) WritePart(slot int, n uint64, off int, p []byte) error {
	if err := f.check(slot, off, len(p)); err != nil {
		return err
	}
	bs := f.opt.BlockSize
	switch {
	case f.broken[slot]:
		return fmt.Errorf("cache file %s: slot %d lost its data in a failed write: %w", f.opt.Path, slot, syscall.EIO)
	case f.zero[slot]:
		// No data area to patch: write the whole block.
		if blockstore.IsZero(p) {
			return f.put(slot, n, nil, stDirty, "")
		}
		data := make([]byte, bs)
		copy(data[off:], p)
		return f.put(slot, n, data, stDirty, "")
	}
	old := make([]byte, len(p))
	at := f.dataAt(slot) + int64(off)
	if _, err := f.f.ReadAt(old, at); err != nil {
		return fmt.Errorf("cache file %s: reading slot %d: %w", f.opt.Path, slot, err)
	}
	sum := crcReplace(f.crcs[slot], old, p, bs-off-len(p))
	if _, err := f.f.WriteAt(p, at); err != nil {
		// As in put: the slot's data may be half changed.
		f.broken[slot] = true
		return fmt.Errorf("cache file %s: writing slot %d: %w", f.opt.Path, slot, err)
	}
	f.advise(slot)
	f.crcs[slot] = sum
	e := entry{state: stDirty, dataCRC: sum, block: n, seq: f.seq.Add(1), token: f.token}
	return f.writeEntry(slot, e)
}
