package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStopWhileOpening: a stop signal while the disk is still opening —
// S3 answering 503, each request retried for up to --maxRetryPause (ten
// minutes here) — ends the start within seconds, cleanly, instead of
// being ignored until the retries give up (or, in socket mode, killing
// the process).
func TestStopWhileOpening(t *testing.T) {
	// A server where the bucket exists but every other request finds it
	// busy: those are retried.
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && strings.Trim(r.URL.Path, "/") == "bucket" {
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>busy</Message></Error>`)
	}))
	defer busy.Close()
	busyURL := busy.URL + "/"

	common := []string{"-f", "-d", "--baseURL=" + busyURL, "--accessId=a", "--accessKey=b",
		"--size=1M", "--initialRetryPause=50", "--maxRetryPause=600000", "bucket"}
	t.Run("nbd socket", func(t *testing.T) {
		stopWhileOpening(t, append(append([]string{"--nbd"}, common...), "nbd+unix:///?socket="+filepath.Join(t.TempDir(), "s")))
	})
	t.Run("fuse", func(t *testing.T) {
		needFUSE(t)
		stopWhileOpening(t, append(common, t.TempDir()))
	})
}

// stopWhileOpening starts s3backer with args, sends SIGTERM once it logs
// a retry, and requires a clean exit soon after.
func stopWhileOpening(t *testing.T, args []string) {
	cmd := exec.Command(bin, args...)
	cmd.Env = testEnv(t)
	onLine, retrying := seen("retrying")
	p, err := startProc(t, cmd, onLine)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-retrying:
	case err := <-p.done:
		t.Fatalf("exited (%v) before retrying:\n%s", err, p.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("no retry logged:\n%s", p.logText())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit %v after SIGTERM while opening, want a clean stop:\n%s", err, p.logText())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after SIGTERM while opening:\n%s", p.logText())
	}
	if !strings.Contains(p.logText(), "stopping while the disk opens") {
		t.Errorf("the log does not say the start was stopped:\n%s", p.logText())
	}
}
