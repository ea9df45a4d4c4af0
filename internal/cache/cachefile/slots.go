package cachefile

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/s3backer-go/s3backer/internal/cache"
)

// The cache.Slots methods. The cache never runs two of them on one slot
// at once (except Read with Read), which is what guards the per-slot
// fields crcs, zero and broken.

func (f *File) NumSlots() int { return f.nslots }

func (f *File) Recovered() []cache.Recovered { return f.recovered }

func (f *File) dataAt(slot int) int64 { return f.dataOff + int64(slot)*int64(f.opt.BlockSize) }

func (f *File) check(slot, off, n int) error {
	if !f.started {
		return errors.New("cache file not started")
	}
	if slot < 0 || slot >= f.nslots || off < 0 || n < 0 || n > f.opt.BlockSize-off {
		return fmt.Errorf("cache file slot %d (%d bytes at %d): %w", slot, n, off, syscall.EINVAL)
	}
	return nil
}

// advise tells the kernel it may drop the slot's pages (--blockCacheFileAdvise).
func (f *File) advise(slot int) {
	if f.opt.Advise {
		_ = unix.Fadvise(f.fd, f.dataAt(slot), int64(f.opt.BlockSize), unix.FADV_DONTNEED)
	}
}

// Read copies bytes [off, off+len(p)) of the slot's data.
func (f *File) Read(slot, off int, p []byte) error {
	if err := f.check(slot, off, len(p)); err != nil {
		return err
	}
	switch {
	case f.broken[slot]:
		return fmt.Errorf("cache file %s: slot %d lost its data in a failed write: %w", f.opt.Path, slot, syscall.EIO)
	case f.zero[slot]:
		clear(p)
		return nil
	}
	if _, err := f.f.ReadAt(p, f.dataAt(slot)+int64(off)); err != nil {
		return fmt.Errorf("cache file %s: reading slot %d: %w", f.opt.Path, slot, err)
	}
	f.advise(slot)
	return nil
}

// Write makes data (nil: zeroes) the slot's dirty contents, block n: the
// data, then the entry saying so (two pwrites, no sync: see the package
// documentation). A zero block writes no data.
func (f *File) Write(slot int, n uint64, data []byte) error {
	return f.put(slot, n, data, stDirty, "")
}

// Fill makes data, read from below with tag, the slot's clean contents.
func (f *File) Fill(slot int, n uint64, data []byte, tag string) error {
	return f.put(slot, n, data, stClean, tag)
}

func (f *File) put(slot int, n uint64, data []byte, state uint8, tag string) error {
	if err := f.check(slot, 0, f.opt.BlockSize); err != nil {
		return err
	}
	if data != nil && len(data) != f.opt.BlockSize {
		return fmt.Errorf("cache file slot %d: %d bytes: %w", slot, len(data), syscall.EINVAL)
	}
	var sum uint32
	if data != nil {
		if _, err := f.f.WriteAt(data, f.dataAt(slot)); err != nil {
			// The old data may be half overwritten: never serve (or
			// write back) it. The entry on disk no longer matches
			// either, so a restart drops the slot too.
			f.broken[slot] = true
			return fmt.Errorf("cache file %s: writing slot %d: %w", f.opt.Path, slot, err)
		}
		sum = crc(data)
		f.advise(slot)
	}
	f.crcs[slot], f.zero[slot], f.broken[slot] = sum, data == nil, false
	e := entry{state: state, zero: data == nil, dataCRC: sum, block: n, seq: f.seq.Add(1), token: f.token, tag: tag}
	return f.writeEntry(slot, e)
}

// Clean records that the slot's data (block n) is now below with tag.
// The data and its dirty entry are synced first (shared with concurrent
// Cleans), so that no crash, power failure included, can leave a clean
// entry while the data it stands for is lost.
func (f *File) Clean(slot int, n uint64, tag string) error {
	if err := f.check(slot, 0, 0); err != nil {
		return err
	}
	if f.broken[slot] {
		return nil // nothing to record: the slot is dropped at restart
	}
	if err := f.sync.sync(f.fd); err != nil {
		return fmt.Errorf("cache file %s: fdatasync: %w", f.opt.Path, err)
	}
	e := entry{state: stClean, zero: f.zero[slot], dataCRC: f.crcs[slot], block: n, seq: f.seq.Add(1), token: f.token, tag: tag}
	return f.writeEntry(slot, e)
}

// Free does nothing: the slot's entry stays on disk until the slot is
// reused, or its block gets an entry in another slot, or changes below
// (Invalidate). Until then a restart may recover the block from it,
// which is right: nothing has changed it since.
func (f *File) Free(int) {}

// Invalidate erases the slot's entry (a freed slot whose block is about to
// change below).
func (f *File) Invalidate(slot int) error {
	if err := f.check(slot, 0, 0); err != nil {
		return err
	}
	f.slotMu[slot].Lock()
	defer f.slotMu[slot].Unlock()
	return f.eraseLocked(slot)
}

// eraseLocked zeroes the slot's entry; slotMu[slot] held.
func (f *File) eraseLocked(slot int) error {
	var b [entryLen]byte
	if _, err := f.f.WriteAt(b[:], dirStart+int64(slot)*entryLen); err != nil {
		return fmt.Errorf("cache file %s: erasing the entry of slot %d: %w", f.opt.Path, slot, err)
	}
	f.mu.Lock()
	if old := f.onDisk[slot]; old != noBlock && f.names[uint64(old)] == slot {
		delete(f.names, uint64(old))
	}
	f.onDisk[slot] = noBlock
	f.mu.Unlock()
	return nil
}

// writeEntry writes the slot's entry, then erases any older entry of the
// same block in another (freed) slot: that one must be gone before this
// slot can be reused and its entry overwritten, or a restart would find
// only the older one.
func (f *File) writeEntry(slot int, e entry) error {
	var b [entryLen]byte
	e.encode(slot, b[:])
	f.slotMu[slot].Lock()
	_, err := f.f.WriteAt(b[:], dirStart+int64(slot)*entryLen)
	older := -1
	if err == nil {
		f.mu.Lock()
		if old := f.onDisk[slot]; old != noBlock && f.names[uint64(old)] == slot {
			delete(f.names, uint64(old))
		}
		f.onDisk[slot] = int64(e.block)
		if s, ok := f.names[e.block]; ok && s != slot {
			older = s
		}
		f.names[e.block] = slot
		f.mu.Unlock()
	}
	f.slotMu[slot].Unlock()
	if err != nil {
		return fmt.Errorf("cache file %s: writing the entry of slot %d: %w", f.opt.Path, slot, err)
	}
	if older < 0 {
		return nil
	}
	f.slotMu[older].Lock()
	defer f.slotMu[older].Unlock()
	f.mu.Lock()
	still := f.onDisk[older] == int64(e.block)
	f.mu.Unlock()
	if !still {
		return nil // reused meanwhile: its entry names another block now
	}
	return f.eraseLocked(older)
}

// Close syncs and closes the file (and releases its lock). Dirty entries
// left (blocks the cache could not write back) stay for the next run.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed || f.f == nil {
		f.closed = true
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	err := fdatasync(f.fd)
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cache file %s: close: %w", f.opt.Path, err)
	}
	return nil
}
