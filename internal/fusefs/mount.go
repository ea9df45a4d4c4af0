package fusefs

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Server is a mounted file system.
type Server struct {
	srv        *fuse.Server
	mountpoint string
	conn       string // the connection's abort file under fusectl, if known
	done       chan struct{}
}

// MountOptions are Mount's settings beyond the file system's.
type MountOptions struct {
	// SingleThreaded serves one request at a time (-s).
	SingleThreaded bool
	// DebugLog receives go-fuse's request log with -d or -o debug; nil
	// means standard error.
	DebugLog *log.Logger
}

// Mount mounts fs on mountpoint and serves it until unmounted. It
// returns once the kernel has the mount and the first request has been
// answered.
func Mount(mountpoint string, fs *FS, opt MountOptions) (*Server, error) {
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return nil, err
	}
	if err := CheckMountpoint(mp); err != nil {
		return nil, err
	}
	mo := fs.opt.Settings.mountOptions(opt.SingleThreaded, fs.disk.BlockSize())
	mo.Logger = opt.DebugLog
	if mo.Logger == nil {
		mo.Logger = log.New(os.Stderr, "fuse: ", log.LstdFlags|log.Lmicroseconds)
	}
	srv, err := fuse.NewServer(fs, mp, mo)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mp, mountError(err))
	}
	s := &Server{srv: srv, mountpoint: mp, done: make(chan struct{})}
	go func() {
		srv.Serve()
		close(s.done)
	}()
	if err := srv.WaitMount(); err != nil {
		_ = s.Unmount()
		return nil, fmt.Errorf("mount %s: %w", mp, err)
	}
	// Only now: a stat of the mount point is a request to this server.
	var st unix.Stat_t
	if unix.Stat(mp, &st) == nil {
		// fusectl names a connection by the mount's device number.
		s.conn = fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", unix.Major(st.Dev)<<20|unix.Minor(st.Dev))
	}
	return s, nil
}

// mountError says what to do about the usual causes.
func mountError(err error) error {
	switch {
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w (mounting needs root, or fusermount3 and permission to use /dev/fuse)", err)
	case errors.Is(err, syscall.ENODEV) || errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w (is the fuse module loaded and /dev/fuse present?)", err)
	}
	return err
}

// CheckMountpoint fails unless path is a directory: checked before
// anything slow starts, so a typo fails at once.
func CheckMountpoint(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mount point %s: not a directory", path)
	}
	return nil
}

// Done is closed once the file system is unmounted (by Unmount, umount,
// fusermount3 -u) and no request is left running.
func (s *Server) Done() <-chan struct{} { return s.done }

// Mountpoint is where the file system is mounted.
func (s *Server) Mountpoint() string { return s.mountpoint }

// Unmount unmounts the file system and waits for its requests to end. It
// fails with EBUSY while the disk file is open (say, by a loop device).
func (s *Server) Unmount() error {
	select {
	case <-s.done:
		return nil // unmounted already
	default:
	}
	if err := s.srv.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", s.mountpoint, err)
	}
	<-s.done
	return nil
}

// Detach unmounts lazily: the mount leaves the namespace at once, and
// requests of files still open go on being served until they are closed;
// Done tells when.
func (s *Server) Detach() error {
	if err := unix.Unmount(s.mountpoint, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach %s: %w", s.mountpoint, err)
	}
	return nil
}

// Abort ends the connection with the kernel: every request, pending or
// future, fails with ENOTCONN. The last resort of a stop that cannot wait
// any longer for the file's users.
func (s *Server) Abort(ctx context.Context) error {
	if s.conn == "" {
		return errors.New("abort: the FUSE connection is unknown")
	}
	if err := os.WriteFile(s.conn, []byte("1"), 0); err != nil {
		return fmt.Errorf("abort the FUSE connection: %w", err)
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("abort the FUSE connection: %w", ctx.Err())
	}
}
