package cachefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/s3backer-go/s3backer/internal/cache"
)

// Start makes the file ready for this run, stamped with token (the mount
// token this run holds; 0 without one: --test, --readOnly): the dirty
// blocks Plan did not keep are dropped (with a warning giving their
// count), and so are blocks beyond the disk; the file is rebuilt if it
// must be (new, a C s3backer file, another block size) or resized to
// Options.Slots, keeping dirty blocks first (Plan refused to keep more
// than fit). Then the file is synced. It fails only if the file cannot
// be written.
func (f *File) Start(token uint32) error {
	if f.started {
		return errors.New("cache file: started twice")
	}
	keep := make([]found, 0, len(f.found))
	var dropped, beyond int
	for _, fo := range f.found {
		dirty := fo.e.state == stDirty
		switch {
		case fo.e.block >= f.opt.NumBlocks: // kept dirty ones: refused by Plan
			beyond++
		case dirty && !f.plan.KeepDirty:
			dropped++
		default:
			keep = append(keep, fo)
		}
	}
	if dropped > 0 {
		f.log.Warn("dropping dirty blocks found in the cache file: data written before the last run stopped, never written to the bucket "+
			"(start with --blockCacheRecoverDirtyBlocks to write them back)", "file", f.opt.Path, "blocks", dropped)
	}
	if f.torn > 0 {
		f.log.Warn("blocks of the cache file were being written when the last run stopped; not recovered", "file", f.opt.Path, "blocks", f.torn)
	}
	if beyond > 0 {
		f.log.Info("dropping cached blocks beyond the end of the disk", "file", f.opt.Path, "blocks", beyond)
	}
	var err error
	switch {
	case f.rebuild != "":
		if f.rebuild != "new" {
			f.log.Warn("rebuilding the cache file", "file", f.opt.Path, "why", f.rebuild)
		}
		keep = nil
		err = f.rewrite(nil, token)
	case f.hdr.slots != f.opt.Slots:
		// Dirty blocks first: a smaller file keeps every one of them.
		slices.SortStableFunc(keep, func(a, b found) int { return int(b.e.state) - int(a.e.state) })
		if len(keep) > f.opt.Slots {
			keep = keep[:f.opt.Slots]
		}
		f.log.Info("resizing the cache file", "file", f.opt.Path, "from", f.hdr.slots, "to", f.opt.Slots, "blocksKept", len(keep))
		err = f.rewrite(keep, token)
		for i := range keep {
			keep[i].slot = i
		}
	default:
		err = f.restamp(keep, token)
	}
	if err != nil {
		return fmt.Errorf("cache file %s: %w", f.opt.Path, err)
	}
	f.setup(keep, token)
	return nil
}

// restamp rewrites the directory in place with only the entries kept,
// stamped with token, and the header with token; then syncs. A crash
// half-way leaves entries each of which is whole, old or new.
func (f *File) restamp(keep []found, token uint32) error {
	dir := make([]byte, f.hdr.slots*entryLen)
	for _, fo := range keep {
		e := fo.e
		e.token = token
		e.encode(fo.slot, dir[fo.slot*entryLen:])
	}
	if _, err := f.f.WriteAt(dir, dirStart); err != nil {
		return err
	}
	h := f.hdr
	h.token, h.numBlocks = token, f.opt.NumBlocks
	if _, err := f.f.WriteAt(h.encode(), 0); err != nil {
		return err
	}
	f.hdr = h
	return fdatasync(f.fd)
}

// rewrite writes a new file of Options.Slots slots holding keep (in slots
// 0, 1, ...) next to the old one, syncs it and renames it over the old
// one: a crash leaves one or the other whole.
func (f *File) rewrite(keep []found, token uint32) (err error) {
	slots, bs := f.opt.Slots, f.opt.BlockSize
	tmp := f.opt.Path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			nf.Close()
			os.Remove(tmp)
		}
	}()
	if err := lock(nf); err != nil {
		return err
	}
	nfd := int(nf.Fd())
	size := dataStart(slots) + int64(slots)*int64(bs)
	// Reserve the space now, so that writes to the cache never find the
	// disk full half-way through a block (not every file system can).
	if err := unix.Fallocate(nfd, 0, 0, size); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("reserving %d bytes: %w", size, err)
		}
		if err := nf.Truncate(size); err != nil {
			return err
		}
	}
	dir := make([]byte, slots*entryLen)
	buf := make([]byte, bs)
	oldBase, newBase := dataStart(f.hdr.slots), dataStart(slots)
	for i, fo := range keep {
		e := fo.e
		e.token = token
		if !e.zero {
			if _, err := f.f.ReadAt(buf, oldBase+int64(fo.slot)*int64(bs)); err != nil {
				return fmt.Errorf("copying slot %d: %w", fo.slot, err)
			}
			if crc(buf) != e.dataCRC {
				return fmt.Errorf("slot %d changed while copying", fo.slot)
			}
			if _, err := nf.WriteAt(buf, newBase+int64(i)*int64(bs)); err != nil {
				return err
			}
		}
		e.encode(i, dir[i*entryLen:])
	}
	if _, err := nf.WriteAt(dir, dirStart); err != nil {
		return err
	}
	h := header{blockSize: bs, slots: slots, token: token, numBlocks: f.opt.NumBlocks}
	if _, err := nf.WriteAt(h.encode(), 0); err != nil {
		return err
	}
	if err := fdatasync(nfd); err != nil {
		return err
	}
	if err := os.Rename(tmp, f.opt.Path); err != nil {
		return err
	}
	syncDir(filepath.Dir(f.opt.Path))
	if f.f != nil {
		f.f.Close()
	}
	f.f, f.fd, f.hdr = nf, nfd, h
	return nil
}

// syncDir makes a rename durable; best effort (not every file system can).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// setup builds the in-memory state of a started file.
func (f *File) setup(keep []found, token uint32) {
	n := f.opt.Slots
	f.started, f.nslots, f.token = true, n, token
	f.dataOff = dataStart(n)
	f.slotMu = make([]sync.Mutex, n)
	f.crcs = make([]uint32, n)
	f.zero = make([]bool, n)
	f.broken = make([]bool, n)
	f.onDisk = make([]int64, n)
	f.names = make(map[uint64]int, len(keep))
	for i := range f.onDisk {
		f.onDisk[i] = noBlock
		f.zero[i] = true
	}
	f.recovered = make([]cache.Recovered, 0, len(keep))
	for _, fo := range keep {
		f.onDisk[fo.slot] = int64(fo.e.block)
		f.names[fo.e.block] = fo.slot
		f.crcs[fo.slot], f.zero[fo.slot] = fo.e.dataCRC, fo.e.zero
		r := cache.Recovered{Slot: fo.slot, Block: fo.e.block, Dirty: fo.e.state == stDirty, Zero: fo.e.zero}
		if !r.Dirty {
			r.Tag = fo.e.tag
		}
		f.recovered = append(f.recovered, r)
	}
	f.found = nil
}
