package stats_test

import (
	"bytes"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/s3backer-go/s3backer/internal/backend/retry"
	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/stats"
	"github.com/s3backer-go/s3backer/internal/zero"
)

// workload drives every kind of counter by a known amount.
func workload(r *stats.Registry) {
	for range 5 {
		r.S3.Start(stats.OpPut)
		r.S3.Done(stats.OpPut, stats.OK, 20*time.Millisecond)
		r.S3.Sent(100)
	}
	for range 3 {
		r.S3.Start(stats.OpGet)
		r.S3.Done(stats.OpGet, stats.OK, 10*time.Millisecond)
		r.S3.Received(50)
	}
	r.S3.Start(stats.OpGet)
	r.S3.Done(stats.OpGet, stats.NotFound, time.Millisecond)
	r.S3.Start(stats.OpDelete)
	r.S3.Done(stats.OpDelete, stats.OK, 2*time.Millisecond)
	r.S3.Deleted(1)
	r.S3.Start(stats.OpDeleteMany)
	r.S3.Done(stats.OpDeleteMany, stats.OK, 4*time.Millisecond)
	r.S3.Deleted(7)
	r.S3.Start(stats.OpPut)
	r.S3.Done(stats.OpPut, stats.HTTP5xx, time.Second)
	r.S3.Start(stats.OpGet)
	r.S3.Done(stats.OpGet, stats.Forbidden, time.Second)
	r.S3.Start(stats.OpPut) // still in flight
	r.NBD.ConnectionOpened()
	r.NBD.ConnectionOpened()
	r.NBD.ConnectionClosed()
	r.NBD.RequestDone("write", 4096, false)
	r.NBD.RequestDone("write", 4096, true)
	r.NBD.RequestDone("read", 512, false)
	r.NBD.RequestDone("flush", 0, false)
}

func newRegistry() *stats.Registry {
	r := stats.New()
	r.Watch(stats.Sources{
		Retry: func() retry.Stats { return retry.Stats{Attempts: 12, Retries: 2, RetryDelay: 1500 * time.Millisecond} },
		Cache: func() cache.Stats {
			return cache.Stats{CurrentSize: 10, DirtyBlocks: 4, DirtyRatio: 0.4, ReadHits: 3, ReadMisses: 1, WriteHits: 1, WriteMisses: 3, ReadAheads: 2}
		},
		Zero: func() zero.Stats { return zero.Stats{ZeroReads: 6, DroppedWrites: 1, KnownZero: 90} },
	})
	return r
}

func TestText(t *testing.T) {
	r := newRegistry()
	workload(r)
	text := r.Text()
	// s3backer's format: the name left-justified in 28 columns, a space, the value.
	line := regexp.MustCompile(`^[a-z0-9_]{1,28} *\s\S+( sec| blocks)?$`)
	for _, l := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		if !line.MatchString(l) || (len(l) > 29 && l[28] != ' ') {
			t.Errorf("badly formed stats line %q", l)
		}
	}
	m, err := stats.ParseText(text)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"http_gets": 3, "http_puts": 5, "http_deletes": 2, "http_zero_blocks_read": 1,
		"http_normal_blocks_read": 3, "http_normal_blocks_written": 5, "http_zero_blocks_written": 8,
		"http_avg_get_time": 0.010, "http_avg_put_time": 0.020, "http_avg_delete_time": 0.003,
		"http_5xx_error": 1, "http_forbidden": 1, "http_4xx_error": 0,
		"http_num_retries": 2, "http_total_retry_delay": 1.5, "http_requests_in_flight": 1,
		"http_bytes_sent": 500, "http_bytes_received": 150,
		"block_cache_current_size": 10, "block_cache_dirty_ratio": 0.4, "block_cache_read_hits": 3,
		"block_cache_read_misses": 1, "block_cache_read_hit_ratio": 0.75, "block_cache_write_hit_ratio": 0.25,
		"block_cache_dirty_blocks": 4, "block_cache_read_ahead": 2,
		"zero_block_cache_size": 90, "zero_block_cache_read_hits": 6, "zero_block_cache_write_hits": 1,
		"nbd_connections": 1, "nbd_connections_total": 2, "nbd_write_requests": 2, "nbd_write_errors": 1,
		"nbd_write_bytes": 8192, "nbd_read_requests": 1, "nbd_read_bytes": 512, "nbd_flush_requests": 1,
		"out_of_memory_errors": 0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if _, ok := m["http_empty_blocks_read"]; ok {
		t.Error("http_empty_blocks_read shown without --listBlocks")
	}
	r.SetListBlocks(true)
	if m, _ := stats.ParseText(r.Text()); m["http_empty_blocks_read"] != 6 {
		t.Errorf("with --listBlocks, http_empty_blocks_read = %v, want 6", m["http_empty_blocks_read"])
	}
}

// Layers that are not stacked have no lines, as in s3backer.
func TestTextSections(t *testing.T) {
	m, err := stats.ParseText(stats.New().Text())
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || m["out_of_memory_errors"] != 0 {
		t.Errorf("empty registry shows %v", m)
	}
}

func TestReset(t *testing.T) {
	r := newRegistry()
	workload(r)
	r.Reset()
	m, err := stats.ParseText(r.Text())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		switch k {
		// Gauges keep their value.
		case "block_cache_current_size", "block_cache_dirty_ratio", "block_cache_dirty_blocks",
			"zero_block_cache_size", "nbd_connections", "http_requests_in_flight":
			if v == 0 {
				t.Errorf("gauge %s reset to 0", k)
			}
		default:
			if v != 0 {
				t.Errorf("%s = %v after Reset", k, v)
			}
		}
	}
	r.S3.Start(stats.OpGet)
	r.S3.Done(stats.OpGet, stats.OK, time.Millisecond)
	if m, _ := stats.ParseText(r.Text()); m["http_gets"] != 1 {
		t.Errorf("http_gets = %v after one more GET, want 1", m["http_gets"])
	}
	// Prometheus counters are never reset.
	if s := r.Snapshot(); s.S3.Count(stats.OK, stats.OpGet) != 4 {
		t.Errorf("snapshot GETs = %d, want 4", s.S3.Count(stats.OK, stats.OpGet))
	}
}

func TestExtra(t *testing.T) {
	r := stats.New()
	r.Extra(func() []stats.Line { return []stats.Line{{Name: "md5_cache_current_size", Value: "3 blocks"}} })
	if !bytes.Contains(r.Text(), []byte("md5_cache_current_size       3 blocks\n")) {
		t.Errorf("extra line missing:\n%s", r.Text())
	}
}

// scrape serves the registry the way --metricsListen does and parses the
// answer with Prometheus' own text parser.
func scrape(t *testing.T, r *stats.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.Collector())
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
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
	t.Fatalf("no %s%v", name, want)
	return 0
}

// The metrics and the stats text read the same counters.
func TestMetricsAgreeWithText(t *testing.T) {
	r := newRegistry()
	workload(r)
	fams := scrape(t, r)
	m, err := stats.ParseText(r.Text())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text   string
		metric string
		labels []string
	}{
		{"http_gets", "s3backer_s3_requests_total", []string{"op", "get", "outcome", "ok"}},
		{"http_gets", "s3backer_s3_request_duration_seconds", []string{"op", "get", "outcome", "ok"}},
		{"http_puts", "s3backer_s3_requests_total", []string{"op", "put", "outcome", "ok"}},
		{"http_5xx_error", "s3backer_s3_requests_total", []string{"op", "put", "outcome", "http_5xx"}},
		{"http_forbidden", "s3backer_s3_requests_total", []string{"op", "get", "outcome", "forbidden"}},
		{"http_zero_blocks_read", "s3backer_s3_requests_total", []string{"op", "get", "outcome", "not_found"}},
		{"http_bytes_sent", "s3backer_s3_sent_bytes_total", nil},
		{"http_bytes_received", "s3backer_s3_received_bytes_total", nil},
		{"http_zero_blocks_written", "s3backer_s3_deleted_objects_total", nil},
		{"http_num_retries", "s3backer_s3_retries_total", nil},
		{"http_total_retry_delay", "s3backer_s3_retry_delay_seconds_total", nil},
		{"http_requests_in_flight", "s3backer_s3_requests_in_flight", []string{"op", "put"}},
		{"block_cache_read_hits", "s3backer_cache_reads_total", []string{"result", "hit"}},
		{"block_cache_read_misses", "s3backer_cache_reads_total", []string{"result", "miss"}},
		{"block_cache_write_misses", "s3backer_cache_writes_total", []string{"result", "miss"}},
		{"block_cache_dirty_blocks", "s3backer_cache_dirty_blocks", nil},
		{"block_cache_current_size", "s3backer_cache_blocks", nil},
		{"zero_block_cache_read_hits", "s3backer_zero_read_hits_total", nil},
		{"zero_block_cache_size", "s3backer_zero_known_blocks", nil},
		{"nbd_connections", "s3backer_nbd_connections", nil},
		{"nbd_connections_total", "s3backer_nbd_connections_total", nil},
		{"nbd_write_requests", "s3backer_nbd_requests_total", []string{"command", "write"}},
		{"nbd_write_errors", "s3backer_nbd_request_errors_total", []string{"command", "write"}},
		{"nbd_write_bytes", "s3backer_nbd_request_bytes_total", []string{"command", "write"}},
	} {
		if got := value(t, fams, c.metric, c.labels...); got != m[c.text] {
			t.Errorf("%s%v = %v, stats text %s = %v", c.metric, c.labels, got, c.text, m[c.text])
		}
	}
	// The histogram's buckets are cumulative and end at the count.
	h := fams["s3backer_s3_request_duration_seconds"]
	for _, mm := range h.GetMetric() {
		hist := mm.GetHistogram()
		var last uint64
		for _, b := range hist.GetBucket() {
			if b.GetCumulativeCount() < last || b.GetCumulativeCount() > hist.GetSampleCount() {
				t.Errorf("bucket %v: cumulative %d after %d of %d", b.GetUpperBound(), b.GetCumulativeCount(), last, hist.GetSampleCount())
			}
			last = b.GetCumulativeCount()
		}
	}
	if got := value(t, fams, "s3backer_s3_request_duration_seconds", "op", "put", "outcome", "http_5xx"); got != 1 {
		t.Errorf("5xx put latency samples = %v, want 1", got)
	}
}
