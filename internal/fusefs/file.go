package fusefs

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// File handles of the disk file; stats-file handles count up from
// firstStatsFh, each owning a snapshot of the text.
const (
	diskReadFh   = 1
	diskWriteFh  = 2 // opened for writing: its close flushes
	firstStatsFh = 16
)

// Linux fallocate(2) modes.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
)

func (fs *FS) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if fs.denied(&in.InHeader) {
		return fuse.EACCES
	}
	writing := in.Flags&syscall.O_ACCMODE != syscall.O_RDONLY
	switch in.NodeId {
	case diskIno:
		if writing && fs.disk.ReadOnly() {
			return fuse.EROFS
		}
		out.Fh = diskReadFh
		if writing {
			out.Fh = diskWriteFh
		}
		switch {
		case fs.opt.DirectIO || fs.opt.Settings.DirectIO:
			// Direct writes of one file may then run in parallel
			// (the kernel serialises them otherwise).
			out.OpenFlags = fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES
		case fs.opt.Settings.KeepCache:
			out.OpenFlags = fuse.FOPEN_KEEP_CACHE
		}
		return fuse.OK
	case statsIno:
		if fs.opt.StatsFilename == "" {
			return fuse.ENOENT
		}
		if writing {
			return fuse.EACCES
		}
		// A snapshot per open, so a reader sees one consistent text
		// however it splits its reads; direct I/O because the length
		// changes under the kernel's feet.
		text := fs.opt.Stats.Text()
		fs.statsMu.Lock()
		out.Fh = fs.nextFh
		fs.nextFh++
		fs.statsFiles[out.Fh] = text
		fs.statsMu.Unlock()
		out.OpenFlags = fuse.FOPEN_DIRECT_IO
		fs.statsAt.Store(time.Now().UnixNano())
		return fuse.OK
	case rootIno:
		return fuse.EISDIR
	}
	return fuse.ENOENT
}

func (fs *FS) Release(_ <-chan struct{}, in *fuse.ReleaseIn) {
	if in.Fh >= firstStatsFh {
		fs.statsMu.Lock()
		delete(fs.statsFiles, in.Fh)
		fs.statsMu.Unlock()
	}
}

func (fs *FS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	if in.Fh >= firstStatsFh {
		text, ok := fs.statsSnapshot(in.Fh)
		if !ok {
			return nil, fuse.EBADF
		}
		if in.Offset >= uint64(len(text)) {
			return fuse.ReadResultData(nil), fuse.OK
		}
		return fuse.ReadResultData(text[in.Offset:min(uint64(len(text)), in.Offset+uint64(in.Size))]), fuse.OK
	}
	if in.NodeId != diskIno {
		return nil, fuse.EBADF
	}
	// Reads end at the end of the disk, like a read of any file.
	size := fs.disk.Size()
	off := int64(in.Offset)
	if in.Offset >= uint64(size) {
		return fuse.ReadResultData(nil), fuse.OK
	}
	n := min(int64(in.Size), size-off, int64(len(buf)))
	p := buf[:n]
	if err := fs.disk.ReadAt(fs.ctx, p, off); err != nil {
		return nil, fs.status("read", off, n, err)
	}
	return fuse.ReadResultData(p), fuse.OK
}

// statsSnapshot is the text an open stats-file handle reads.
func (fs *FS) statsSnapshot(fh uint64) ([]byte, bool) {
	fs.statsMu.Lock()
	defer fs.statsMu.Unlock()
	text, ok := fs.statsFiles[fh]
	return text, ok
}

func (fs *FS) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	if in.NodeId != diskIno || in.Fh != diskWriteFh {
		return 0, fuse.EBADF
	}
	if fs.disk.ReadOnly() {
		return 0, fuse.EROFS
	}
	// The file never grows: a write that starts at or past the end has
	// no room (ENOSPC, as on a block device); one that crosses it is
	// short.
	size := fs.disk.Size()
	off := int64(in.Offset)
	if in.Offset >= uint64(size) {
		if len(data) == 0 {
			return 0, fuse.OK
		}
		return 0, fuse.Status(syscall.ENOSPC)
	}
	n := min(int64(len(data)), size-off)
	if err := fs.disk.WriteAt(fs.ctx, data[:n], off, false); err != nil {
		return 0, fs.status("write", off, n, err)
	}
	fs.diskMtime.Store(time.Now().UnixNano())
	return uint32(n), fuse.OK
}

// Fsync of the disk file makes every write acknowledged so far durable
// (in S3 with the default stack): what an NBD FLUSH does.
func (fs *FS) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	if in.NodeId != diskIno {
		return fuse.OK
	}
	return fs.flush("fsync")
}

// Flush is the close of a file descriptor. Closing one that wrote waits
// until the data is durable, as s3backer does: once the last writer (a
// loop device, dd) has closed the file, nothing is left to lose, and
// unmounting (which needs every descriptor closed) finds the disk clean.
func (fs *FS) Flush(_ <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	if in.NodeId != diskIno || in.Fh != diskWriteFh {
		return fuse.OK
	}
	return fs.flush("flush on close")
}

func (fs *FS) flush(what string) fuse.Status {
	if err := fs.disk.Flush(fs.ctx); err != nil {
		return fs.status(what, 0, fs.disk.Size(), err)
	}
	return fuse.OK
}

// Fallocate: punching a hole (what a loop device does for a discard) or
// zeroing a range makes it read as zeroes and frees its blocks in the
// bucket; plain allocation inside the file succeeds with nothing to do.
func (fs *FS) Fallocate(_ <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	if in.NodeId != diskIno {
		return fuse.Status(syscall.EOPNOTSUPP)
	}
	if in.Fh != diskWriteFh {
		return fuse.EBADF
	}
	if fs.disk.ReadOnly() {
		return fuse.EROFS
	}
	size := fs.disk.Size()
	off, length := int64(in.Offset), int64(in.Length)
	if off < 0 || length <= 0 || in.Offset > uint64(size) {
		return fuse.EINVAL
	}
	mode := in.Mode
	switch mode &^ fallocKeepSize {
	case 0:
		if mode&fallocKeepSize == 0 && off+length > size {
			return fuse.Status(syscall.EFBIG)
		}
		return fuse.OK
	case fallocPunchHole, fallocZeroRange:
	default:
		return fuse.Status(syscall.EOPNOTSUPP)
	}
	if mode&fallocPunchHole != 0 && mode&fallocKeepSize == 0 {
		return fuse.EINVAL // the kernel checks this already
	}
	if off+length > size {
		if mode&fallocKeepSize == 0 {
			return fuse.Status(syscall.EFBIG)
		}
		length = size - off // nothing is stored past the end
	}
	if length == 0 {
		return fuse.OK
	}
	if err := fs.disk.Zero(fs.ctx, off, length, false); err != nil {
		return fs.status("fallocate", off, length, err)
	}
	fs.diskMtime.Store(time.Now().UnixNano())
	return fuse.OK
}

// status maps a disk error to an errno: its own when it carries one,
// else EIO, logged since the caller sees only the number.
func (fs *FS) status(op string, off, length int64, err error) fuse.Status {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		errno = syscall.EINTR
	default:
		errno = syscall.EIO
	}
	if errno != syscall.EROFS {
		fs.log.Error("FUSE "+op+" failed", "offset", off, "length", length, "err", err)
	}
	return fuse.Status(errno)
}
