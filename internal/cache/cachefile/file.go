package cachefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/s3backer-go/s3backer/internal/cache"
)

// Options say what cache file the disk wants.
type Options struct {
	Path      string
	BlockSize int    // the disk's block size (a power of two)
	NumBlocks uint64 // blocks of the disk: recovered blocks beyond it are dropped
	Slots     int    // capacity in blocks (--blockCacheSize)
	// Advise tells the kernel not to keep the file's data cached
	// (--blockCacheFileAdvise: posix_fadvise DONTNEED after each block
	// read or written, as s3backer does).
	Advise bool
	Logger *slog.Logger
}

// File is a cache file: Open it, decide what to do with what it holds
// (Plan), then Start it; then it is the cache's cache.Slots.
type File struct {
	opt Options
	log *slog.Logger
	f   *os.File // nil until Start when there is no file yet
	fd  int

	// What Open found.
	hdr     header
	found   []found // the newest valid entry of each block, data checked
	torn    int     // blocks whose newest entry did not match its data
	rebuild string  // why Start must write a new file ("" if not)
	plan    Plan

	// From Start on.
	started   bool
	nslots    int
	dataOff   int64
	token     uint32 // stamped on every entry written
	recovered []cache.Recovered
	seq       atomic.Uint64
	sync      syncer
	slotMu    []sync.Mutex // a slot's entry writes (its own, and invalidation)
	crcs      []uint32     // per slot, of the data last written: guarded by the cache's per-slot exclusion
	zero      []bool       // likewise: the slot holds zeroes
	broken    []bool       // likewise: a data write failed half-way, the slot's data is lost

	mu     sync.Mutex
	onDisk []int64        // block the slot's entry on disk names (-1: none)
	names  map[uint64]int // block -> slot whose entry on disk names it
	closed bool
}

type found struct {
	slot int
	e    entry
}

const noBlock = -1

var _ cache.Slots = (*File)(nil)
var _ cache.Invalidator = (*File)(nil)

// Open opens (or prepares to create) the cache file and reads what it
// holds: it writes nothing yet. It fails if another process has the file
// open, if the file is not a cache file, or if it holds dirty blocks that
// cannot be kept (a C s3backer file, another block size).
func Open(opt Options) (*File, error) {
	if opt.BlockSize <= 0 || opt.BlockSize&(opt.BlockSize-1) != 0 || opt.Slots <= 0 {
		return nil, fmt.Errorf("cache file %s: block size %d, %d slots: %w", opt.Path, opt.BlockSize, opt.Slots, syscall.EINVAL)
	}
	f := &File{opt: opt, log: opt.Logger}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	fh, err := os.OpenFile(opt.Path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f.rebuild = "new"
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache file: %w", err)
	}
	if err := lock(fh); err != nil {
		fh.Close()
		return nil, fmt.Errorf("cache file %s: %w", opt.Path, err)
	}
	f.f, f.fd = fh, int(fh.Fd())
	if err := f.scan(); err != nil {
		fh.Close()
		return nil, fmt.Errorf("cache file %s: %w", opt.Path, err)
	}
	return f, nil
}

// lock takes an exclusive lock on the file for as long as it is open: two
// processes must never share a cache file.
func lock(fh *os.File) error {
	err := unix.Flock(int(fh.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errors.New("in use by another process")
	}
	return err
}

func (f *File) readAt(off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	k, err := f.f.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:k], err
}

// scan reads the header and directory and checks the data of the blocks
// to recover.
func (f *File) scan() error {
	st, err := f.f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		f.rebuild = "empty"
		return nil
	}
	hb, err := f.readAt(0, headerLen)
	if err != nil {
		return err
	}
	if isCFile(hb) {
		return f.scanC(hb)
	}
	if !bytes.HasPrefix(hb, []byte(magic)) {
		return errors.New("not a cache file (unknown format); refusing to overwrite it")
	}
	h, problem := decodeHeader(hb)
	if problem != "" {
		return fmt.Errorf("%s: damaged; move it away to start with an empty cache", problem)
	}
	f.hdr = h
	need := dataStart(h.slots)
	if st.Size() < need {
		return fmt.Errorf("truncated (%d bytes, its directory ends at %d); move it away to start with an empty cache", st.Size(), need)
	}
	dir, err := f.readAt(dirStart, h.slots*entryLen)
	if err != nil {
		return err
	}
	best := map[uint64]found{}
	var maxSeq uint64
	for slot := range h.slots {
		e, ok := decodeEntry(slot, dir[slot*entryLen:])
		if !ok {
			continue
		}
		maxSeq = max(maxSeq, e.seq)
		if b, dup := best[e.block]; dup && b.e.seq >= e.seq {
			continue
		}
		best[e.block] = found{slot, e}
	}
	f.seq.Store(maxSeq)
	for _, fo := range best {
		f.found = append(f.found, fo)
	}
	slices.SortFunc(f.found, func(a, b found) int { return a.slot - b.slot })

	if h.blockSize != f.opt.BlockSize {
		if d := f.dirty(); d > 0 {
			return fmt.Errorf("block size %d, the disk's is %d, and it holds %d dirty blocks not yet written to the bucket: "+
				"start once with --blockSize=%d and --blockCacheRecoverDirtyBlocks to write them back, or move the file away to drop them",
				h.blockSize, f.opt.BlockSize, d, h.blockSize)
		}
		f.rebuild = fmt.Sprintf("its block size is %d, the disk's %d", h.blockSize, f.opt.BlockSize)
		f.found = nil
		return nil
	}
	return f.checkData(st.Size())
}

// checkData drops the blocks whose data does not match their entry: the
// data write was cut short by a crash. Reading every cached block costs
// one pass over the file at start.
func (f *File) checkData(size int64) error {
	bs := f.hdr.blockSize
	base := dataStart(f.hdr.slots)
	bad := make([]bool, len(f.found))
	var g errgroup.Group
	g.SetLimit(4)
	for i, fo := range f.found {
		if fo.e.zero {
			continue
		}
		g.Go(func() error {
			off := base + int64(fo.slot)*int64(bs)
			if off+int64(bs) > size {
				bad[i] = true
				return nil
			}
			b, err := f.readAt(off, bs)
			if err != nil {
				return fmt.Errorf("reading slot %d: %w", fo.slot, err)
			}
			bad[i] = crc(b) != fo.e.dataCRC
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	kept := f.found[:0]
	for i, fo := range f.found {
		if bad[i] {
			f.torn++
			if fo.e.state == stDirty {
				f.log.Warn("cache file: a dirty block was being written when the last run stopped; its write is lost",
					"file", f.opt.Path, "block", fo.e.block)
			}
			continue
		}
		kept = append(kept, fo)
	}
	f.found = kept
	return nil
}

// scanC recognises a cache file of the C s3backer: rebuilt, unless it
// holds blocks not written back.
func (f *File) scanC(hb []byte) error {
	c, err := parseCFile(hb, f.readAt)
	if err != nil {
		return fmt.Errorf("%w; move it away to start with an empty cache", err)
	}
	if c.dirty > 0 {
		return fmt.Errorf("a cache file of the C s3backer holding %d dirty blocks not yet written to the bucket: "+
			"run the C s3backer once with --blockCacheFile=%s --blockCacheRecoverDirtyBlocks and unmount it cleanly "+
			"to write them back (or move the file away to drop them), then start again", c.dirty, f.opt.Path)
	}
	f.hdr.token = c.token
	f.rebuild = "a cache file of the C s3backer (all its blocks written back)"
	return nil
}

// Token is the mount token the file recorded (0: none): a set 'already
// mounted' flag holding it was left by this file's mount.
func (f *File) Token() uint32 { return f.hdr.token }

// dirty counts the dirty blocks found.
func (f *File) dirty() int {
	d := 0
	for _, fo := range f.found {
		if fo.e.state == stDirty {
			d++
		}
	}
	return d
}

// Dirty is the number of dirty blocks found: data acknowledged to a
// client but not yet written to the store below when the last run ended.
func (f *File) Dirty() int { return f.dirty() }

// Found is the number of blocks found that can be recovered.
func (f *File) Found() int { return len(f.found) }
