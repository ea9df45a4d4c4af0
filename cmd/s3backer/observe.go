package main

import (
	"io"
	"sync"
	"time"

	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/daemon"
	"github.com/s3backer-go/s3backer/internal/disk"
)

// observe starts what shows the open disk from outside the process: the
// --statsFileMirror file, the --metricsListen server, and the progress of
// the --listBlocks survey on stderr in the foreground. Every front end
// calls it once the disk is open. The returned stop ends them all, after
// a last write of the mirror; it is safe to call more than once.
func observe(cfg *config.Config, d *disk.Disk, stderr io.Writer) (stop func(), err error) {
	stopPublishing, err := d.Publish(cfg)
	if err != nil {
		return nil, err
	}
	stopSurvey := func() {}
	if d.Zero != nil && cfg.ListBlocks && !cfg.Quiet && !daemon.IsChild() {
		stopSurvey = showSurvey(d, stderr)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			stopSurvey()
			stopPublishing()
		})
	}, nil
}

// showSurvey shows the startup survey's progress until it ends (or stop).
func showSurvey(d *disk.Disk, stderr io.Writer) (stop func()) {
	p := newProgress(stderr, "listing stored blocks", -1, false)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(barInterval)
		defer t.Stop()
		var shown uint64
		update := func() {
			n := d.Zero.SurveyReports()
			p.Add(int64(n - shown))
			shown = n
		}
		for {
			select {
			case <-d.Zero.SurveyDone():
				update()
				p.Finish()
				return
			case <-quit:
				p.Finish()
				return
			case <-t.C:
				update()
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
