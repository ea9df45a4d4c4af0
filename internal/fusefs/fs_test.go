package fusefs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/s3backer-go/s3backer/internal/volume"
)

func TestLayout(t *testing.T) {
	m := mount(t, setup{opts: []string{"uid=1234", "gid=5678"}})
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"file", "stats"}) {
		t.Fatalf("root holds %q, want file and stats", names)
	}
	st, err := os.Stat(m.file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != testSize || st.Mode() != 0o600 || !st.Mode().IsRegular() {
		t.Errorf("file: size %d mode %v, want %d and -rw-------", st.Size(), st.Mode(), testSize)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != 1234 || sys.Gid != 5678 {
		t.Errorf("file owner %d:%d, want 1234:5678 (-o uid=,gid=)", sys.Uid, sys.Gid)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "nothing")); !os.IsNotExist(err) {
		t.Errorf("stat of a missing name: %v, want not-exist", err)
	}
	if err := os.WriteFile(filepath.Join(m.dir, "new"), []byte("x"), 0o644); err == nil {
		t.Error("creating a file succeeded; the directory's content is fixed")
	}
	if err := os.Remove(m.file); err == nil {
		t.Error("removing the disk file succeeded")
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(m.dir, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Bsize != testBlockSize || sfs.Blocks != testBlocks {
		t.Errorf("statfs: bsize %d blocks %d, want %d and %d", sfs.Bsize, sfs.Blocks, testBlockSize, testBlocks)
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(mounts, []byte(" "+m.dir+" fuse.s3backer ")) {
		t.Errorf("/proc/self/mounts has no fuse.s3backer mount on %s", m.dir)
	}
}

func TestUmaskAndMode(t *testing.T) {
	m := mount(t, setup{fileMode: 0o640})
	if st, err := os.Stat(m.file); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("file mode %v (%v), want 0640 from FileMode", st.Mode(), err)
	}
	m = mount(t, setup{fileMode: 0o600, opts: []string{"umask=022"}})
	if st, err := os.Stat(m.file); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("file mode %v (%v), want 0755: umask= replaces the permissions, as in libfuse", st.Mode(), err)
	}
}

// Writes of every alignment land where they should, and read back the
// same through the file and through the volume below.
func TestReadWrite(t *testing.T) {
	for _, direct := range []bool{false, true} {
		name := "cached"
		if direct {
			name = "directIO"
		}
		t.Run(name, func(t *testing.T) {
			m := mount(t, setup{directIO: direct})
			f := m.open(t, os.O_RDWR)
			want := make([]byte, testSize)
			for i, w := range []struct{ off, n int }{
				{0, testBlockSize},             // one whole block
				{testBlockSize + 100, 50},      // inside a block
				{3*testBlockSize - 10, 20},     // across a boundary
				{5 * testBlockSize, 300 << 10}, // many blocks, more than one request
				{testSize - 7, 7},              // the last bytes
			} {
				p := pattern(byte(i+1), w.n)
				if n, err := f.WriteAt(p, int64(w.off)); err != nil || n != w.n {
					t.Fatalf("write %d+%d: %d, %v", w.off, w.n, n, err)
				}
				copy(want[w.off:], p)
			}
			got := make([]byte, testSize)
			if _, err := f.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the file reads back differently from what was written")
			}
			if !bytes.Equal(readVolume(t, m.vol, 0, testSize), want) {
				t.Fatal("the volume holds something else than was written")
			}
		})
	}
}

// Many writers at once through one descriptor (go-fuse serves requests
// concurrently): nothing lost or mixed up, whatever the interleaving.
func TestConcurrentWriters(t *testing.T) {
	m := mount(t, setup{directIO: true})
	f := m.open(t, os.O_RDWR)
	const writers = 8
	chunk := testSize / writers
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			// Unaligned pieces, so neighbours share blocks.
			for off := 0; off < chunk; off += 3000 {
				n := min(3000, chunk-off)
				if _, err := f.WriteAt(pattern(byte(w), n), int64(w*chunk+off)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := make([]byte, testSize)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for w := range writers {
		for off := 0; off < chunk; off += 3000 {
			n := min(3000, chunk-off)
			if !bytes.Equal(got[w*chunk+off:w*chunk+off+n], pattern(byte(w), n)) {
				t.Fatalf("writer %d, offset %d: wrong data", w, off)
			}
		}
	}
}

// fsync makes written data durable: below a write-back cache that
// uploads only when flushed, nothing reaches the store before fsync and
// everything after.
func TestFsyncIsDurable(t *testing.T) {
	m := mount(t, setup{cached: true})
	f := m.open(t, os.O_RDWR)
	if _, err := f.WriteAt(pattern(1, 3*testBlockSize), testBlockSize); err != nil {
		t.Fatal(err)
	}
	if n := m.store.Stored(); n != 0 {
		t.Fatalf("%d blocks stored before fsync; the cache should hold them", n)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := m.store.Stored(); n != 3 {
		t.Fatalf("%d blocks stored after fsync, want 3", n)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatalf("fdatasync: %v", err)
	}
}

// Closing a descriptor that wrote waits until its data is durable;
// closing a read-only one does not flush.
func TestCloseFlushes(t *testing.T) {
	m := mount(t, setup{cached: true})
	f, err := os.OpenFile(m.file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(pattern(2, testBlockSize), 0); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(m.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.store.Stored(); n != 0 {
		t.Fatalf("%d blocks stored after closing a read-only descriptor, want 0", n)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.store.Stored(); n != 1 {
		t.Fatalf("%d blocks stored after closing the writer, want 1", n)
	}
}

// fallocate(PUNCH_HOLE|KEEP_SIZE), what a loop device sends for a
// discard, zeroes the range: whole blocks leave the store, partial ones
// are zeroed in place.
func TestPunchHole(t *testing.T) {
	m := mount(t, setup{})
	f := m.open(t, os.O_RDWR)
	data := pattern(3, 8*testBlockSize)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if n := m.store.Stored(); n != 8 {
		t.Fatalf("%d blocks stored, want 8", n)
	}
	// From the middle of block 1 to the middle of block 5.
	off, n := int64(testBlockSize+512), int64(4*testBlockSize)
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(data)
	clear(want[off : off+n])
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("after the punch the file is not the data with the range zeroed")
	}
	if s := m.store.Stored(); s != 5 {
		t.Fatalf("%d blocks stored after punching blocks 2-4 whole, want 5", s)
	}
	// Zero range, and plain allocation inside the file.
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_ZERO_RANGE, 0, testBlockSize); err != nil {
		t.Fatalf("zero range: %v", err)
	}
	if s := m.store.Stored(); s != 4 {
		t.Fatalf("%d blocks stored after zeroing block 0, want 4", s)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, testSize); err != nil {
		t.Fatalf("allocating inside the file: %v", err)
	}
	st, _ := f.Stat()
	if st.Size() != testSize {
		t.Fatalf("size %d after fallocate, want %d", st.Size(), testSize)
	}
}

// The file never grows: writes past the end fail with ENOSPC (as on a
// block device), a write across it is short, reads stop at it.
func TestPastEnd(t *testing.T) {
	m := mount(t, setup{directIO: true})
	f := m.open(t, os.O_RDWR)
	_, err := unix.Pwrite(int(f.Fd()), []byte("x"), testSize)
	wantErrno(t, err, syscall.ENOSPC, "write at the end")
	_, err = unix.Pwrite(int(f.Fd()), []byte("x"), testSize+testBlockSize)
	wantErrno(t, err, syscall.ENOSPC, "write past the end")
	n, err := unix.Pwrite(int(f.Fd()), []byte("0123456789"), testSize-4)
	if err != nil || n != 4 {
		t.Fatalf("write across the end: %d, %v; want 4 bytes written", n, err)
	}
	buf := make([]byte, 10)
	n, err = unix.Pread(int(f.Fd()), buf, testSize-4)
	if err != nil || n != 4 || string(buf[:n]) != "0123" {
		t.Fatalf("read across the end: %d %q, %v", n, buf[:n], err)
	}
	if n, err = unix.Pread(int(f.Fd()), buf, testSize); n != 0 || err != nil {
		t.Fatalf("read at the end: %d, %v; want 0 bytes", n, err)
	}
	err = unix.Fallocate(int(f.Fd()), 0, testSize-10, 20)
	wantErrno(t, err, syscall.EFBIG, "fallocate past the end")
	// Truncation is ignored, as by s3backer ("dd of=FILE" truncates).
	if err := f.Truncate(0); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	if st, _ := os.Stat(m.file); st.Size() != testSize {
		t.Fatalf("size %d after truncate, want %d", st.Size(), testSize)
	}
	if _, err := f.WriteAt([]byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(m.file); st.Size() != testSize {
		t.Fatalf("size %d after a write, want %d", st.Size(), testSize)
	}
}

// A read-only disk opens for reading only: writing, trimming and opening
// for writing fail with EROFS.
func TestReadOnly(t *testing.T) {
	m := mount(t, setup{readOnly: true, fileMode: 0o400})
	_, err := os.OpenFile(m.file, os.O_RDWR, 0)
	wantErrno(t, err, syscall.EROFS, "open for writing")
	_, err = os.OpenFile(m.file, os.O_WRONLY, 0)
	wantErrno(t, err, syscall.EROFS, "open write-only")
	f := m.open(t, os.O_RDONLY)
	got := make([]byte, testBlockSize)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, make([]byte, testBlockSize)) {
		t.Fatal("an unwritten disk does not read as zeroes")
	}
	if st, _ := f.Stat(); st.Mode().Perm() != 0o400 {
		t.Fatalf("mode %v, want 0400", st.Mode())
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync of a read-only disk: %v", err)
	}
}

// The stats file shows the source's text, one snapshot per open; removing
// it resets the counters and it is back at once.
func TestStatsFile(t *testing.T) {
	m := mount(t, setup{})
	path := filepath.Join(m.dir, "stats")
	m.stats.bump()
	m.stats.bump()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "test_counter 2\ntest_resets 0\n" {
		t.Fatalf("stats file reads %q", got)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() != int64(len(got)) || st.Mode().Perm() != 0o444 {
		t.Fatalf("stats file: %v, %v; want size %d, mode 0444", st, err, len(got))
	}
	// One open, one text: a counter moving between two reads of the same
	// descriptor does not tear it.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(f, first); err != nil {
		t.Fatal(err)
	}
	m.stats.bump()
	rest, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(first)+string(rest) != string(got) {
		t.Fatalf("one descriptor read %q then %q (%v), want %q", first, rest, err, got)
	}
	if err := os.WriteFile(path, []byte("x"), 0); err == nil {
		t.Fatal("writing the stats file succeeded")
	}

	if err := os.Remove(path); err != nil {
		t.Fatalf("unlink stats: %v", err)
	}
	got, err = os.ReadFile(path)
	if err != nil {
		t.Fatalf("the stats file is gone after unlink: %v", err)
	}
	if string(got) != "test_counter 0\ntest_resets 1\n" {
		t.Fatalf("after unlink the stats file reads %q; want the counters reset", got)
	}
	// Again: the name is looked up anew each time.
	if err := os.Remove(path); err != nil {
		t.Fatalf("second unlink: %v", err)
	}
	if got, _ = os.ReadFile(path); string(got) != "test_counter 0\ntest_resets 2\n" {
		t.Fatalf("after the second unlink the stats file reads %q", got)
	}
}

func TestStatsFileHidden(t *testing.T) {
	empty := ""
	m := mount(t, setup{statsName: &empty})
	ents, err := os.ReadDir(m.dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "file" {
		t.Fatalf("root holds %v (%v), want the disk file alone", ents, err)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "stats")); !os.IsNotExist(err) {
		t.Fatalf("stat stats: %v, want not-exist", err)
	}
}

func TestSingleThreaded(t *testing.T) {
	m := mount(t, setup{singleThrd: true})
	if err := os.WriteFile(m.file, pattern(9, 64<<10), 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 64<<10)
	f := m.open(t, os.O_RDONLY)
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, pattern(9, 64<<10)) {
		t.Fatalf("read back: %v", err)
	}
}

// umount from outside ends serving; an unmount while the file is open
// fails with EBUSY, and a detach waits for the last close.
func TestUnmount(t *testing.T) {
	m := mount(t, setup{})
	f, err := os.OpenFile(m.file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(m.dir, 0); err != unix.EBUSY {
		t.Fatalf("umount with the file open: %v, want EBUSY", err)
	}
	if err := m.srv.Detach(); err != nil {
		t.Fatal(err)
	}
	// Still served through the open descriptor.
	if _, err := f.WriteAt([]byte("still here"), 0); err != nil {
		t.Fatalf("write after detach: %v", err)
	}
	select {
	case <-m.srv.Done():
		t.Fatal("serving ended while the file is open")
	default:
	}
	f.Close()
	<-m.srv.Done()
	if got := readVolume(t, m.vol, 0, 10); string(got) != "still here" {
		t.Fatalf("volume holds %q", got)
	}
}

// lseek(SEEK_DATA/SEEK_HOLE) on the disk file finds the stored blocks and
// skips the rest; the end of the file is a hole; past it is ENXIO.
func TestSeekDataHole(t *testing.T) {
	m := mount(t, setup{})
	f := m.open(t, os.O_RDWR)
	bs := int64(testBlockSize)
	for _, b := range []int64{10, 11, 200} {
		if _, err := f.WriteAt(pattern(byte(b), testBlockSize), b*bs); err != nil {
			t.Fatal(err)
		}
	}
	fd := int(f.Fd())
	for _, c := range []struct {
		off    int64
		whence int
		want   int64 // -1: ENXIO
	}{
		{0, unix.SEEK_DATA, 10 * bs},
		{0, unix.SEEK_HOLE, 0},
		{10*bs + 100, unix.SEEK_DATA, 10*bs + 100},
		{10 * bs, unix.SEEK_HOLE, 12 * bs},
		{12 * bs, unix.SEEK_DATA, 200 * bs},
		{200*bs + 5, unix.SEEK_HOLE, 201 * bs},
		{201 * bs, unix.SEEK_DATA, -1},
		{201 * bs, unix.SEEK_HOLE, 201 * bs},
		{testSize, unix.SEEK_DATA, -1},
		{testSize, unix.SEEK_HOLE, -1},
	} {
		got, err := unix.Seek(fd, c.off, c.whence)
		switch {
		case c.want < 0 && err != unix.ENXIO:
			t.Errorf("seek(%d, %d): %d, %v; want ENXIO", c.off, c.whence, got, err)
		case c.want >= 0 && (err != nil || got != c.want):
			t.Errorf("seek(%d, %d): %d, %v; want %d", c.off, c.whence, got, err, c.want)
		}
	}
	// A hole punched in the middle of the data shows up.
	if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 10*bs, bs); err != nil {
		t.Fatal(err)
	}
	if got, err := unix.Seek(fd, 0, unix.SEEK_DATA); err != nil || got != 11*bs {
		t.Errorf("SEEK_DATA after punching block 10: %d, %v; want %d", got, err, 11*bs)
	}
}

// holeDisk is a disk of holes whose Extents tells one block at a time, and
// counts the calls.
type holeDisk struct {
	Disk
	calls int
}

func (d *holeDisk) Size() int64 { return 1 << 40 }
func (d *holeDisk) Extents(_ context.Context, off, length int64) ([]volume.Extent, error) {
	d.calls++
	return []volume.Extent{{Length: min(length, testBlockSize), Hole: true}}, nil
}

// A seek over holes that are slow to learn stops after seekBudget
// requests with an answer lseek(2) allows: data where it stopped, a hole
// at the end of the file.
func TestSeekBudget(t *testing.T) {
	d := &holeDisk{}
	fs := New(d, Options{})
	var out fuse.LseekOut
	in := &fuse.LseekIn{InHeader: fuse.InHeader{NodeId: diskIno}, Fh: diskReadFh, Offset: 100, Whence: seekData}
	if st := fs.Lseek(nil, in, &out); st != fuse.OK || out.Offset != 100+seekBudget*testBlockSize || d.calls != seekBudget {
		t.Fatalf("SEEK_DATA: %v, offset %d after %d calls; want %d after %d", st, out.Offset, d.calls, 100+seekBudget*testBlockSize, seekBudget)
	}
	in.Whence = seekHole
	if st := fs.Lseek(nil, in, &out); st != fuse.OK || out.Offset != 100 {
		t.Fatalf("SEEK_HOLE in a hole: %v, offset %d; want 100", st, out.Offset)
	}
}
