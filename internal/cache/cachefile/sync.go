package cachefile

import (
	"sync"

	"golang.org/x/sys/unix"
)

// syncer shares fdatasyncs between concurrent callers (group commit):
// each caller needs one that started after it called, and one running
// fdatasync serves everyone who arrived before it started.
type syncer struct {
	mu      sync.Mutex
	cond    sync.Cond
	started uint64 // fdatasyncs started
	done    uint64 // the last finished
	running bool
	err     error // of the last finished
}

func (s *syncer) sync(fd int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cond.L == nil {
		s.cond.L = &s.mu
	}
	want := s.started + 1 // the next to start begins after our writes
	for s.done < want {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		s.started++
		gen := s.started
		s.mu.Unlock()
		err := fdatasync(fd)
		s.mu.Lock()
		s.running, s.done, s.err = false, gen, err
		s.cond.Broadcast()
	}
	return s.err
}

func fdatasync(fd int) error {
	for {
		err := unix.Fdatasync(fd)
		if err != unix.EINTR {
			return err
		}
	}
}
