// Package fusefs serves a disk as one regular file in a FUSE mount, with
// s3backer's layout: a root directory holding the disk file and, unless
// hidden, a human-readable statistics file (unlinking it resets the
// counters).
//
// It implements go-fuse's raw API (fuse.RawFileSystem) rather than its
// node API (package fs): with three fixed inodes there is no tree to keep,
// so every request goes straight to the disk without the node API's
// inode table, per-request locking and handle bookkeeping; reads fill the
// buffer go-fuse already holds for the reply; and the mount's behaviour
// (timeouts, open flags, which requests exist) is spelled out here rather
// than left to a framework's defaults.
package fusefs

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Disk is the byte-addressed disk the file shows; *volume.Volume is one.
type Disk interface {
	Size() int64
	BlockSize() int
	ReadOnly() bool
	ReadAt(ctx context.Context, p []byte, off int64) error
	WriteAt(ctx context.Context, p []byte, off int64, fua bool) error
	// Zero makes a range read as zeroes (a trim: whole blocks are
	// deleted).
	Zero(ctx context.Context, off, length int64, fua bool) error
	// Flush makes every acknowledged write durable.
	Flush(ctx context.Context) error
}

// Stats is the source of the statistics file.
type Stats interface {
	// Text is the file's content now, one "name value" line per counter.
	Text() []byte
	// Reset zeroes the counters (the file was unlinked).
	Reset()
}

// Options shape the file system.
type Options struct {
	// Filename is the disk file's name (s3backer's --filename).
	Filename string
	// StatsFilename is the statistics file's name; "" or a nil Stats
	// hides it.
	StatsFilename string
	Stats         Stats
	// FileMode holds the disk file's permission bits (--fileMode).
	FileMode os.FileMode
	// DirectIO bypasses the page cache for the disk file (--directIO or
	// -o direct_io).
	DirectIO bool
	// Settings come from the -o options (ParseOptions).
	Settings Settings
	Logger   *slog.Logger
}

// Inode numbers: fixed, one per file.
const (
	rootIno  = fuse.FUSE_ROOT_ID
	diskIno  = rootIno + 1
	statsIno = rootIno + 2
)

// FS is the file system; its methods are called by go-fuse, many at once.
type FS struct {
	fuse.RawFileSystem // ENOSYS for every request not handled here

	disk      Disk
	opt       Options
	log       *slog.Logger
	uid, gid  uint32
	owner     uint32 // who mounted: with allow_root, the only user besides root
	start     time.Time
	diskMtime atomic.Int64 // Unix nanoseconds of the last write
	statsAt   atomic.Int64 // last read of the stats file

	// ctx is passed to the disk and never cancelled. Interrupts of single
	// requests are not honoured: a Go reader sees its own preemption
	// signals turn into FUSE interrupts, and a block device does not fail
	// I/O on signals either; the layers below bound their own retries.
	ctx context.Context

	statsMu    sync.Mutex
	statsFiles map[uint64][]byte // open stats-file handles: their snapshot
	nextFh     uint64
}

// New returns the file system of d.
func New(d Disk, opt Options) *FS {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Filename == "" {
		opt.Filename = "file"
	}
	if opt.Stats == nil {
		opt.StatsFilename = ""
	}
	fs := &FS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		disk:          d,
		opt:           opt,
		log:           opt.Logger,
		uid:           uint32(os.Getuid()),
		gid:           uint32(os.Getgid()),
		owner:         uint32(os.Getuid()),
		start:         time.Now(),
		ctx:           context.Background(),
		statsFiles:    map[uint64][]byte{},
		nextFh:        firstStatsFh,
	}
	if u := opt.Settings.UID; u != nil {
		fs.uid = *u
	}
	if g := opt.Settings.GID; g != nil {
		fs.gid = *g
	}
	fs.diskMtime.Store(fs.start.UnixNano())
	fs.statsAt.Store(fs.start.UnixNano())
	return fs
}

func (fs *FS) String() string { return "s3backer" }

// denied applies allow_root: the kernel lets everyone in (allow_other),
// so the owner and root are told apart here, at every way in.
func (fs *FS) denied(h *fuse.InHeader) bool {
	return fs.opt.Settings.DenyOthers && h.Uid != 0 && h.Uid != fs.owner
}

// mode applies umask= the way libfuse does: it replaces the permissions.
func (fs *FS) mode(typ, perm uint32) uint32 {
	if m := fs.opt.Settings.Umask; m != nil {
		perm = 0o777 &^ *m
	}
	return typ | perm
}

func setTime(sec *uint64, nsec *uint32, unixNano int64) {
	*sec, *nsec = uint64(unixNano/1e9), uint32(unixNano%1e9)
}

// attr fills the attributes of inode ino; false if there is none.
func (fs *FS) attr(ino uint64, a *fuse.Attr) bool {
	*a = fuse.Attr{Ino: ino, Owner: fuse.Owner{Uid: fs.uid, Gid: fs.gid}, Blksize: uint32(fs.disk.BlockSize())}
	start := fs.start.UnixNano()
	setTime(&a.Ctime, &a.Ctimensec, start)
	switch ino {
	case rootIno:
		a.Mode = fs.mode(syscall.S_IFDIR, 0o755)
		a.Nlink = 2
		setTime(&a.Atime, &a.Atimensec, start)
		setTime(&a.Mtime, &a.Mtimensec, start)
	case diskIno:
		a.Mode = fs.mode(syscall.S_IFREG, uint32(fs.opt.FileMode.Perm()))
		a.Nlink = 1
		a.Size = uint64(fs.disk.Size())
		a.Blocks = a.Size / 512
		m := fs.diskMtime.Load()
		setTime(&a.Atime, &a.Atimensec, m)
		setTime(&a.Mtime, &a.Mtimensec, m)
	case statsIno:
		if fs.opt.StatsFilename == "" {
			return false
		}
		a.Mode = fs.mode(syscall.S_IFREG, 0o444)
		a.Nlink = 1
		a.Size = uint64(len(fs.opt.Stats.Text()))
		setTime(&a.Atime, &a.Atimensec, fs.statsAt.Load())
		setTime(&a.Mtime, &a.Mtimensec, time.Now().UnixNano())
	default:
		return false
	}
	return true
}

// inode is the inode of a name in the root directory, or 0.
func (fs *FS) inode(name string) uint64 {
	switch {
	case name == fs.opt.Filename:
		return diskIno
	case name == fs.opt.StatsFilename && name != "":
		return statsIno
	}
	return 0
}

func (fs *FS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	if h.NodeId != rootIno {
		return fuse.ENOTDIR
	}
	if fs.denied(h) {
		return fuse.EACCES
	}
	ino := fs.inode(name)
	if ino == 0 {
		if fs.opt.Settings.NegativeTimeout == 0 {
			return fuse.ENOENT
		}
		// Node 0 with a validity is how FUSE caches a negative entry.
		*out = fuse.EntryOut{}
		out.SetEntryTimeout(fs.opt.Settings.NegativeTimeout)
		return fuse.OK
	}
	out.NodeId, out.Generation = ino, 1
	fs.attr(ino, &out.Attr)
	out.SetEntryTimeout(fs.opt.Settings.EntryTimeout)
	out.SetAttrTimeout(fs.opt.Settings.AttrTimeout)
	return fuse.OK
}

// Forget needs nothing: the inodes are fixed.
func (fs *FS) Forget(nodeid, nlookup uint64) {}

func (fs *FS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	if fs.denied(&in.InHeader) {
		return fuse.EACCES
	}
	if !fs.attr(in.NodeId, &out.Attr) {
		return fuse.ENOENT
	}
	out.SetTimeout(fs.opt.Settings.AttrTimeout)
	return fuse.OK
}

// SetAttr accepts what s3backer accepts: a size change is ignored (so
// "dd of=FILE" without conv=notrunc, which truncates first, works as it
// does with s3backer, and the size stays the disk's), and times can be
// set on the disk file. Owner and mode are fixed by the mount options.
func (fs *FS) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if _, ok := in.GetMode(); ok {
		return fuse.EPERM
	}
	if _, ok := in.GetUID(); ok {
		return fuse.EPERM
	}
	if _, ok := in.GetGID(); ok {
		return fuse.EPERM
	}
	if in.NodeId == diskIno {
		if t, ok := in.GetMTime(); ok {
			fs.diskMtime.Store(t.UnixNano())
		}
	}
	if !fs.attr(in.NodeId, &out.Attr) {
		return fuse.ENOENT
	}
	out.SetTimeout(fs.opt.Settings.AttrTimeout)
	return fuse.OK
}

func (fs *FS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if in.NodeId != rootIno {
		return fuse.ENOTDIR
	}
	if fs.denied(&in.InHeader) {
		return fuse.EACCES
	}
	return fuse.OK
}

func (fs *FS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	entries := []fuse.DirEntry{
		{Name: ".", Ino: rootIno, Mode: syscall.S_IFDIR},
		{Name: "..", Ino: rootIno, Mode: syscall.S_IFDIR},
		{Name: fs.opt.Filename, Ino: diskIno, Mode: syscall.S_IFREG},
	}
	if fs.opt.StatsFilename != "" {
		entries = append(entries, fuse.DirEntry{Name: fs.opt.StatsFilename, Ino: statsIno, Mode: syscall.S_IFREG})
	}
	for i := in.Offset; i < uint64(len(entries)); i++ {
		e := entries[i]
		e.Off = i + 1
		if !out.AddDirEntry(e) {
			break
		}
	}
	return fuse.OK
}

func (fs *FS) ReleaseDir(*fuse.ReleaseIn) {}

func (fs *FS) FsyncDir(<-chan struct{}, *fuse.FsyncIn) fuse.Status { return fuse.OK }

// StatFs reports the disk as s3backer does: all blocks used, three files.
func (fs *FS) StatFs(_ <-chan struct{}, _ *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	bs := fs.disk.BlockSize()
	*out = fuse.StatfsOut{
		Blocks:  uint64(fs.disk.Size()) / uint64(bs),
		Files:   3,
		Bsize:   uint32(bs),
		Frsize:  uint32(bs),
		NameLen: 255,
	}
	return fuse.OK
}

// Unlink of the stats file resets the counters (it reappears at once);
// the disk file cannot be removed.
func (fs *FS) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if fs.denied(h) {
		return fuse.EACCES
	}
	switch fs.inode(name) {
	case statsIno:
		fs.opt.Stats.Reset()
		return fuse.OK
	case diskIno:
		return fuse.EPERM
	}
	return fuse.ENOENT
}

// The directory's content is fixed.
func (fs *FS) Mknod(<-chan struct{}, *fuse.MknodIn, string, *fuse.EntryOut) fuse.Status {
	return fuse.EPERM
}
func (fs *FS) Mkdir(<-chan struct{}, *fuse.MkdirIn, string, *fuse.EntryOut) fuse.Status {
	return fuse.EPERM
}
func (fs *FS) Create(<-chan struct{}, *fuse.CreateIn, string, *fuse.CreateOut) fuse.Status {
	return fuse.EPERM
}
func (fs *FS) Rmdir(<-chan struct{}, *fuse.InHeader, string) fuse.Status { return fuse.EPERM }
func (fs *FS) Rename(<-chan struct{}, *fuse.RenameIn, string, string) fuse.Status {
	return fuse.EPERM
}
func (fs *FS) Link(<-chan struct{}, *fuse.LinkIn, string, *fuse.EntryOut) fuse.Status {
	return fuse.EPERM
}
func (fs *FS) Symlink(<-chan struct{}, *fuse.InHeader, string, string, *fuse.EntryOut) fuse.Status {
	return fuse.EPERM
}
