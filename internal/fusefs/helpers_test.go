package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/volume"
)

const (
	testBlockSize = 4096
	testBlocks    = 256 // a 1 MiB disk
	testSize      = testBlockSize * testBlocks
)

// testStats counts what the file system asks of the stats source.
type testStats struct {
	mu     sync.Mutex
	n      int // bumped by bump; zeroed by Reset
	resets int
}

func (s *testStats) Text() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Appendf(nil, "test_counter %d\ntest_resets %d\n", s.n, s.resets)
}

func (s *testStats) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n = 0
	s.resets++
}

func (s *testStats) bump() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
}

// mounted is a file system mounted for one test.
type mounted struct {
	dir   string // the mount point
	file  string // the disk file's path
	store *memstore.Store
	vol   *volume.Volume
	srv   *Server
	stats *testStats
}

type setup struct {
	readOnly   bool
	cached     bool // a write-back cache that uploads only on flush
	directIO   bool
	opts       []string
	statsName  *string
	fileMode   os.FileMode
	singleThrd bool
}

// needFUSE skips when the machine has no FUSE device.
func needFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
}

// mount builds volume -> [cache] -> memstore and mounts it on a temporary
// directory, unmounted (lazily if need be) when the test ends.
func mount(t *testing.T, s setup) *mounted {
	t.Helper()
	needFUSE(t)
	mem := memstore.New(testBlockSize, testBlocks)
	var st blockstore.Store = mem
	if s.cached {
		c, err := cache.New(mem, cache.Options{Size: testBlocks, Threads: 2, WriteDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		st = c
	}
	vol := volume.New(st, volume.Options{ReadOnly: s.readOnly})
	settings, err := ParseOptions(s.opts)
	if err != nil {
		t.Fatal(err)
	}
	stats := &testStats{}
	name := "stats"
	if s.statsName != nil {
		name = *s.statsName
	}
	mode := s.fileMode
	if mode == 0 {
		mode = 0o600
	}
	fs := New(vol, Options{
		Filename:      "file",
		StatsFilename: name,
		Stats:         stats,
		FileMode:      mode,
		DirectIO:      s.directIO,
		Settings:      settings,
	})
	dir := t.TempDir()
	srv, err := Mount(dir, fs, MountOptions{SingleThreaded: s.singleThrd, DebugLog: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			_ = srv.Detach()
		}
		_ = vol.Close()
	})
	return &mounted{dir: dir, file: filepath.Join(dir, "file"), store: mem, vol: vol, srv: srv, stats: stats}
}

func (m *mounted) open(t *testing.T, flag int) *os.File {
	t.Helper()
	f, err := os.OpenFile(m.file, flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pattern is n bytes that differ from block to block and from run to run
// of the same seed.
func pattern(seed byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i/7) + byte(i>>12)
	}
	return p
}

func wantErrno(t *testing.T, err error, want syscall.Errno, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func readVolume(t *testing.T, v *volume.Volume, off int64, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	if err := v.ReadAt(context.Background(), p, off); err != nil {
		t.Fatal(err)
	}
	return p
}
