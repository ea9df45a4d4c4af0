package stats_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/s3backer-go/s3backer/internal/stats"
)

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func gets(r *stats.Registry, n int) {
	for range n {
		r.S3.Start(stats.OpGet)
		r.S3.Done(stats.OpGet, stats.OK, time.Millisecond)
	}
}

// mirrored reads the mirror file's http_gets (-1 if absent or unparsable).
func mirrored(t *testing.T, path string) float64 {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := stats.ParseText(b)
	if err != nil {
		t.Fatalf("mirror does not parse: %v", err)
	}
	return m["http_gets"]
}

func TestMirror(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stats")
	r := stats.New()
	gets(r, 5)
	stop := stats.Mirror(path, 10*time.Millisecond, r, nil)
	defer stop()
	waitFor(t, "the first mirror", func() bool { return mirrored(t, path) == 5 })

	// Removing the file resets the counters.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mirror back, reset", func() bool { return mirrored(t, path) == 0 })
	gets(r, 2)
	waitFor(t, "the new count", func() bool { return mirrored(t, path) == 2 })

	// Stop writes the last counts at once.
	stop()
	gets(r, 1)
	stop() // twice is fine
	if got := mirrored(t, path); got != 2 {
		t.Errorf("after stop: http_gets %v, want 2 (no write after stop)", got)
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the mirror", len(ents))
	}
}

func TestMirrorUnwritable(t *testing.T) {
	r := stats.New()
	stop := stats.Mirror(filepath.Join(t.TempDir(), "missing", "stats"), time.Millisecond, r, nil)
	stop() // returns although every write fails
}

func TestServeMetrics(t *testing.T) {
	r := stats.New()
	gets(r, 3)
	addr, stop, err := stats.ServeMetrics("127.0.0.1:0", r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("scrape does not parse: %v", err)
	}
	for _, m := range fams["s3backer_s3_requests_total"].GetMetric() {
		if len(m.GetLabel()) == 2 && m.GetLabel()[0].GetValue() == "get" && m.GetLabel()[1].GetValue() == "ok" {
			if m.GetCounter().GetValue() != 3 {
				t.Errorf("get ok = %v, want 3", m.GetCounter().GetValue())
			}
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if _, _, err := stats.ServeMetrics(addr.String(), r, nil); err == nil {
		t.Error("a second server on a busy address started")
	}
}
