package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// How often progress is shown: a bar is redrawn often, a plain line (a
// log file, a pipe) only every few seconds.
var (
	barInterval  = 200 * time.Millisecond
	lineInterval = 5 * time.Second
)

// progress shows how a long job (the survey, --erase) advances: blocks
// done, rate and time left, as a bar on a terminal and as a line every few
// seconds otherwise. The job calls Add from any goroutine, then Finish.
type progress struct {
	w     io.Writer
	what  string // "erasing", "listing blocks"
	total int64  // < 0: unknown (only the count and rate are shown)
	start time.Time
	done  atomic.Int64
	bar   *progressbar.ProgressBar // nil: plain lines

	quit     chan struct{}
	finished chan struct{}
	once     sync.Once
}

// newProgress starts showing progress on w, or nothing if quiet.
func newProgress(w io.Writer, what string, total int64, quiet bool) *progress {
	p := &progress{w: w, what: what, total: total, start: time.Now(),
		quit: make(chan struct{}), finished: make(chan struct{})}
	if quiet {
		close(p.finished)
		return p
	}
	interval := lineInterval
	if isTerminal(w) {
		interval = barInterval
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("s3backer: "+what),
			progressbar.OptionSetItsString("blocks"),
			progressbar.OptionShowIts(),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(total >= 0),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(barInterval),
			progressbar.OptionSetWidth(30),
		)
	}
	go func() {
		defer close(p.finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.show()
			}
		}
	}()
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Add counts n more blocks done.
func (p *progress) Add(n int64) { p.done.Add(n) }

// show draws the bar or writes one line.
func (p *progress) show() {
	n := p.done.Load()
	if p.bar != nil {
		_ = p.bar.Set64(n)
		return
	}
	fmt.Fprintf(p.w, "s3backer: %s\n", p.line(n, time.Since(p.start)))
}

// line is "erasing: 1000 of 5000 blocks (20%), 250 blocks/s, 16s left".
func (p *progress) line(n int64, elapsed time.Duration) string {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(n) / s
	}
	if p.total < 0 {
		return fmt.Sprintf("%s: %d blocks, %s", p.what, n, formatRate(rate))
	}
	s := fmt.Sprintf("%s: %d of %d blocks", p.what, n, p.total)
	if p.total > 0 {
		s += fmt.Sprintf(" (%d%%)", n*100/p.total)
	}
	s += ", " + formatRate(rate)
	if rate > 0 && n < p.total {
		left := time.Duration(float64(p.total-n) / rate * float64(time.Second))
		s += fmt.Sprintf(", %s left", left.Round(time.Second))
	}
	return s
}

// Finish stops the display, after a last line with the final count.
func (p *progress) Finish() {
	p.once.Do(func() {
		select {
		case <-p.finished: // quiet
			return
		default:
		}
		close(p.quit)
		<-p.finished
		n := p.done.Load()
		if p.bar != nil {
			if p.total < 0 {
				// An unknown total never completes by itself.
				p.bar.ChangeMax64(n)
			}
			_ = p.bar.Set64(n)
			_ = p.bar.Finish()
			fmt.Fprintln(p.w)
			return
		}
		elapsed := time.Since(p.start)
		fmt.Fprintf(p.w, "s3backer: %s (done in %s)\n", p.line(n, elapsed), elapsed.Round(time.Millisecond))
	})
}

func formatRate(r float64) string {
	if r < 10 {
		return fmt.Sprintf("%.1f blocks/s", r)
	}
	return fmt.Sprintf("%.0f blocks/s", r)
}
