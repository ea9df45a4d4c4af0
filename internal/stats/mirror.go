package stats

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Mirror rewrites path (--statsFileMirror) with the stats text every interval, and once
// more when stopped. Like s3backer, removing the file resets the counters
// (the next write notices it is gone), and a write failure is logged and
// ends the mirroring. The returned stop may be called more than once.
func Mirror(path string, interval time.Duration, reg *Registry, log *slog.Logger) (stop func()) {
	if interval <= 0 {
		interval = time.Second // s3backer's default
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &mirror{path: path, reg: reg}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if err := m.update(); err != nil {
				log.Error("stats mirror stopped", "path", path, "err", err)
				return
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			if !m.failed {
				if err := m.update(); err != nil {
					log.Warn("last stats mirror update failed", "path", path, "err", err)
				}
			}
		})
	}
}

type mirror struct {
	path   string
	reg    *Registry
	wrote  bool // the file was there after our last write
	failed bool
}

// update resets the counters if the file was removed since the last
// write, then writes it atomically: a reader sees the old text or the new.
func (m *mirror) update() error {
	if m.wrote {
		if _, err := os.Stat(m.path); errors.Is(err, fs.ErrNotExist) {
			m.reg.Reset()
		} else if err != nil {
			m.failed = true
			return err
		}
	}
	if err := writeAtomic(m.path, m.reg.Text()); err != nil {
		m.failed = true
		return err
	}
	m.wrote = true
	return nil
}

// writeAtomic replaces path with data by a rename from a temporary file
// in the same directory.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.new")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
