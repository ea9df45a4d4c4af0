package main

import (
	"strings"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/testenv/lockedbuf"
)

func TestProgressLine(t *testing.T) {
	p := &progress{what: "erasing", total: 1000}
	for _, c := range []struct {
		n       int64
		elapsed time.Duration
		want    string
	}{
		{250, 10 * time.Second, "erasing: 250 of 1000 blocks (25%), 25 blocks/s, 30s left"},
		{1000, 4 * time.Second, "erasing: 1000 of 1000 blocks (100%), 250 blocks/s"},
		{0, time.Second, "erasing: 0 of 1000 blocks (0%), 0.0 blocks/s"},
		{5, 2 * time.Second, "erasing: 5 of 1000 blocks (0%), 2.5 blocks/s, 6m38s left"},
	} {
		if got := p.line(c.n, c.elapsed); got != c.want {
			t.Errorf("line(%d, %v) = %q, want %q", c.n, c.elapsed, got, c.want)
		}
	}
	u := &progress{what: "listing blocks", total: -1}
	if got, want := u.line(300, 2*time.Second), "listing blocks: 300 blocks, 150 blocks/s"; got != want {
		t.Errorf("unknown total: %q, want %q", got, want)
	}
}

// Not a terminal: plain periodic lines, and a last one at Finish.
func TestProgressPlain(t *testing.T) {
	old := lineInterval
	lineInterval = time.Millisecond
	defer func() { lineInterval = old }()
	var out lockedbuf.Buffer
	p := newProgress(&out, "erasing", 10, false)
	p.Add(4)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "s3backer: erasing: 4 of 10 blocks (40%)") {
		if time.Now().After(deadline) {
			t.Fatalf("no periodic line: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	p.Add(6)
	p.Finish()
	p.Finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "s3backer: erasing: 10 of 10 blocks (100%)") || !strings.Contains(last, "done in") {
		t.Errorf("last line %q", last)
	}
}

func TestProgressQuiet(t *testing.T) {
	var out lockedbuf.Buffer
	p := newProgress(&out, "erasing", 10, true)
	p.Add(10)
	p.Finish()
	if out.String() != "" {
		t.Errorf("quiet progress wrote %q", out.String())
	}
}
