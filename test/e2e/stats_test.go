package e2e

import (
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/s3backer-go/s3backer/internal/stats"
	"github.com/s3backer-go/s3backer/internal/testenv/faultproxy"
	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// readMirror parses the --statsFileMirror file; nil if it is not there.
func readMirror(t *testing.T, path string) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := stats.ParseText(b)
	if err != nil {
		t.Fatalf("the stats mirror does not parse: %v\n%s", err, b)
	}
	return m
}

// scrapeMetrics fetches /metrics and parses it with Prometheus' parser.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the metrics do not parse: %v", err)
	}
	return fams
}

// metric is the value of family name's sample whose labels are exactly
// labels (name, value pairs); 0 if there is none (a series not yet seen).
func metric(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	for _, m := range fams[name].GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for i, l := range m.GetLabel() { // sorted by name, as labels must be given
			match = match && l.GetName() == labels[2*i] && l.GetValue() == labels[2*i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// statsVsMetrics pairs stats-file lines with the metrics that count the
// same thing.
var statsVsMetrics = []struct {
	stat   string
	metric string
	labels []string
}{
	{"http_gets", "s3backer_s3_requests_total", []string{"op", "get", "outcome", "ok"}},
	{"http_gets", "s3backer_s3_request_duration_seconds", []string{"op", "get", "outcome", "ok"}},
	{"http_puts", "s3backer_s3_requests_total", []string{"op", "put", "outcome", "ok"}},
	{"http_zero_blocks_read", "s3backer_s3_requests_total", []string{"op", "get", "outcome", "not_found"}},
	{"http_zero_blocks_written", "s3backer_s3_deleted_objects_total", nil},
	{"http_bytes_sent", "s3backer_s3_sent_bytes_total", nil},
	{"http_bytes_received", "s3backer_s3_received_bytes_total", nil},
	{"http_num_retries", "s3backer_s3_retries_total", nil},
	{"zero_block_cache_read_hits", "s3backer_zero_read_hits_total", nil},
	{"nbd_write_requests", "s3backer_nbd_requests_total", []string{"command", "write"}},
	{"nbd_read_requests", "s3backer_nbd_requests_total", []string{"command", "read"}},
	{"nbd_connections_total", "s3backer_nbd_connections_total", nil},
}

// Exact request counts for a known workload, three ways: the stats mirror,
// the Prometheus metrics, and a proxy in front of versitygw that counts
// what really went over the wire. Removing the mirror resets its counters;
// the metrics keep counting.
func TestStatsCounts(t *testing.T) {
	need(t, "nbdsh")
	gw := versitygw.Shared(t)
	p := faultproxy.Start(t, gw.URL)
	bucket := gw.NewBucket(t)
	mirror := filepath.Join(t.TempDir(), "stats")
	addr := freeAddr(t)
	s := s3fStart(t, gw, p, bucket, "--size=4M", "--blockSize=64k", "--blockCacheSize=0",
		"--statsFileMirror="+mirror, "--statsFileMirrorInterval=20", "--metricsListen="+addr)
	url := "http://" + addr + "/metrics"

	// At rest after start-up, the stats and the metrics agree.
	var m0 map[string]float64
	waitFor(t, "the stats mirror", 10*time.Second, func() bool { m0 = readMirror(t, mirror); return m0 != nil })
	p0 := scrapeMetrics(t, url)
	for _, c := range statsVsMetrics {
		if got := metric(p0, c.metric, c.labels...); got != m0[c.stat] {
			t.Errorf("at start: %s%v = %v, stats %s = %v", c.metric, c.labels, got, c.stat, m0[c.stat])
		}
	}
	if m0["http_puts"] < 1 {
		t.Errorf("the 'already mounted' flag was written but http_puts = %v", m0["http_puts"])
	}

	// Removing the mirror resets it.
	if err := os.Remove(mirror); err != nil {
		t.Fatal(err)
	}
	var m map[string]float64
	waitFor(t, "the stats mirror back", 10*time.Second, func() bool { m = readMirror(t, mirror); return m != nil })
	if m["http_puts"] != 0 || m["http_gets"] != 0 {
		t.Fatalf("after removing the mirror: http_puts %v, http_gets %v; want 0", m["http_puts"], m["http_gets"])
	}
	p.ResetCounts()

	// 10 data blocks written and flushed, read back, 5 never-written
	// blocks read (404: zero), then 3 of the written blocks trimmed.
	const bs = 65536
	s3fNbdsh(t, s, `
for b in range(10):
    h.pwrite(bytes([b + 1]) * 65536, b * 65536)
h.flush()
for b in range(10):
    assert h.pread(65536, b * 65536) == bytes([b + 1]) * 65536
for b in range(20, 25):
    assert h.pread(65536, b * 65536) == bytes(65536)
h.trim(3 * 65536, 0)
`)
	// The session has ended once the server counts its connection closed.
	waitFor(t, "the session in the stats", 10*time.Second, func() bool {
		m = readMirror(t, mirror)
		return m["nbd_connections_total"] == 1 && m["nbd_connections"] == 0
	})
	t.Logf("stats mirror after the workload:\n%s", mustRead(t, mirror))
	wire := p.Counts().Received.ByKind
	deletes := wire[faultproxy.KindDelete] + wire[faultproxy.KindDeleteMany]
	for _, c := range []struct {
		stat string
		want float64
	}{
		{"http_puts", 10}, {"http_normal_blocks_written", 10},
		{"http_gets", 10}, {"http_normal_blocks_read", 10}, {"http_zero_blocks_read", 5},
		{"http_zero_blocks_written", 3}, {"http_deletes", float64(deletes)},
		{"http_bytes_sent", 10 * bs}, {"http_bytes_received", 10 * bs},
		{"http_4xx_error", 0}, {"http_5xx_error", 0}, {"http_num_retries", 0},
		{"nbd_write_requests", 10}, {"nbd_write_bytes", 10 * bs}, {"nbd_read_requests", 15},
		{"nbd_flush_requests", 1}, {"nbd_trim_requests", 1}, {"nbd_trim_bytes", 3 * bs},
		{"nbd_write_errors", 0}, {"nbd_read_errors", 0},
	} {
		if m[c.stat] != c.want {
			t.Errorf("%s = %v, want %v", c.stat, m[c.stat], c.want)
		}
	}
	// What went over the wire.
	if wire[faultproxy.KindPut] != 10 || wire[faultproxy.KindGetObject] != 15 || deletes < 1 {
		t.Errorf("on the wire: %v; want 10 PUTs, 15 GETs and at least one delete", wire)
	}

	// The metrics counted everything since start: the start-up and the workload.
	p1 := scrapeMetrics(t, url)
	for _, c := range statsVsMetrics {
		got := metric(p1, c.metric, c.labels...)
		if want := m0[c.stat] + m[c.stat]; got != want {
			t.Errorf("%s%v = %v, want %v at start + %v since the reset", c.metric, c.labels, got, m0[c.stat], m[c.stat])
		}
	}
	if got := metric(p1, "s3backer_nbd_connections"); got != 0 {
		t.Errorf("s3backer_nbd_connections = %v after the session", got)
	}

	// The last write of the mirror, at stop, shows the flag's DELETE.
	s.stop(syscall.SIGTERM)
	if got := readMirror(t, mirror); got["http_deletes"] != m["http_deletes"]+1 {
		t.Errorf("after stop http_deletes = %v, want %v (the flag's DELETE)", got["http_deletes"], m["http_deletes"]+1)
	}
}

// --debug-http logs requests and responses but never the secret key, the
// encryption password or a request signature.
func TestDebugHTTPRedactsSecrets(t *testing.T) {
	need(t, "nbdsh")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	const password = "pw-4e1f9c2a-do-not-log"
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cipher := range []string{"AES-256-CBC", "AES-256-GCM"} {
		t.Run(cipher, func(t *testing.T) {
			bucket := bucket + strings.ToLower(cipher[len(cipher)-3:])
			gw.CreateBucket(t, bucket)
			s := startWith(t, false, append(s3Flags(gw, ""), "--size=1M", "--blockSize=4k", "--encrypt="+cipher,
				"--passwordFile="+pwFile, "--debug", "--debug-http", "--blockCacheSize=0"), bucket)
			s3fNbdsh(t, s, `
h.pwrite(b"x" * 4096, 0)
h.flush()
assert h.pread(4096, 0) == b"x" * 4096
`)
			s.stop(syscall.SIGTERM)
			logs := s.logText() // complete: the output was read to its end before the exit was reported
			if !strings.Contains(logs, `msg="http request" method=PUT`) || !strings.Contains(logs, "msg=\"http response\"") {
				t.Fatalf("no request/response lines with --debug-http:\n%s", logs)
			}
			if !strings.Contains(logs, "Authorization: REDACTED") {
				t.Errorf("the Authorization header is not shown redacted:\n%s", logs)
			}
			for _, secret := range []string{gw.SecretKey, password, "Signature=", "Credential="} {
				if strings.Contains(logs, secret) {
					t.Errorf("the log contains %q", secret)
				}
			}
		})
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// --erase shows its progress; not on a terminal, as plain lines with the
// final counts.
func TestStatsEraseProgress(t *testing.T) {
	need(t, "nbdsh")
	dir := t.TempDir()
	flags := []string{"--size=1M", "--blockSize=4k"}
	s := startServer(t, dir, false, flags...)
	s3fNbdsh(t, s, `
for b in range(20):
    h.pwrite(b"e" * 4096, b * 4096)
h.flush()
`)
	s.stop(syscall.SIGTERM)
	out, err := s3backerOut(t, "", append(flags, "--test", "--erase", "--force", dir)...)
	if err != nil {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	for _, want := range []string{"s3backer: listing blocks: 20 blocks", "s3backer: erasing: 20 of 20 blocks (100%)", "erased 20 blocks"} {
		if !strings.Contains(out, want) {
			t.Errorf("erase output lacks %q:\n%s", want, out)
		}
	}
	if files := blockFiles(t, dir); len(files) != 0 {
		t.Errorf("left after erase: %v", files)
	}
	out, err = s3backerOut(t, "", append(flags, "--test", "--erase", "--force", "--quiet", dir)...)
	if err != nil || out != "" {
		t.Errorf("quiet erase: %v, output %q", err, out)
	}
}
