package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3backer-go/s3backer/internal/volume"
)

// Extenter is a Disk that knows where its holes are (blocks not stored,
// which read as zeroes): with it, lseek(SEEK_DATA/SEEK_HOLE) on the disk
// file skips them, so `cp --sparse`, `qemu-img convert` and the like copy
// only the blocks that exist.
type Extenter interface {
	// Extents describes [off, off+length) from off as runs of data and
	// holes, at least one byte of it (volume.Volume.Extents).
	Extents(ctx context.Context, off, length int64) ([]volume.Extent, error)
}

// seekBudget bounds the extents requests one lseek makes. Past it the
// answer is the conservative one lseek(2) allows (the position reached is
// data; the end of the file is a hole), so a seek over a huge disk whose
// holes are not all known yet (no survey, each block a probe of the
// store) cannot take arbitrarily long.
const seekBudget = 64

// Whence values of lseek(2) that reach a FUSE file system.
const (
	seekData = 3
	seekHole = 4
)

// Lseek answers SEEK_DATA and SEEK_HOLE (the kernel serves the other
// whence values itself).
func (fs *FS) Lseek(_ <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	if in.Whence != seekData && in.Whence != seekHole {
		return fuse.EINVAL
	}
	var size int64
	if in.Fh >= firstStatsFh {
		text, ok := fs.statsSnapshot(in.Fh)
		if !ok {
			return fuse.EBADF
		}
		size = int64(len(text)) // all data
	} else if in.NodeId == diskIno {
		size = fs.disk.Size()
	} else {
		return fuse.EBADF
	}
	off := int64(in.Offset)
	if off >= size {
		return fuse.Status(syscall.ENXIO)
	}
	wantHole := in.Whence == seekHole
	// dataAt answers as for a file that is data from pos on: the data is
	// at pos, the hole is the end of the file.
	dataAt := func(pos int64) fuse.Status {
		out.Offset = uint64(pos)
		if wantHole {
			out.Offset = uint64(size)
		}
		return fuse.OK
	}
	ext, ok := fs.disk.(Extenter)
	if in.Fh >= firstStatsFh || !ok {
		return dataAt(off) // all data
	}
	pos := off
	for range seekBudget {
		runs, err := ext.Extents(fs.ctx, pos, size-pos)
		if err != nil {
			return fs.status("seek", pos, size-pos, err)
		}
		for _, r := range runs {
			if r.Hole == wantHole {
				out.Offset = uint64(pos)
				return fuse.OK
			}
			pos += r.Length
		}
		if pos >= size {
			if wantHole {
				out.Offset = uint64(size) // the hole at the end
				return fuse.OK
			}
			return fuse.Status(syscall.ENXIO) // no data after off
		}
	}
	// Out of budget: pos is as good a place for data as any (reads there
	// give zeroes), and the end of the file is always a hole.
	return dataAt(pos)
}
