package stats

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names and help, one per concept. The counters are those of
// Snapshot (since start; Reset does not affect them).
var (
	descS3Requests = prometheus.NewDesc("s3backer_s3_requests_total",
		"Object-store requests by operation and outcome, every retry included.", []string{"op", "outcome"}, nil)
	descS3Latency = prometheus.NewDesc("s3backer_s3_request_duration_seconds",
		"Object-store request latency by operation and outcome.", []string{"op", "outcome"}, nil)
	descS3InFlight = prometheus.NewDesc("s3backer_s3_requests_in_flight",
		"Object-store requests in progress by operation (put: the uploads under way).", []string{"op"}, nil)
	descS3Sent = prometheus.NewDesc("s3backer_s3_sent_bytes_total",
		"Object bytes uploaded.", nil, nil)
	descS3Received = prometheus.NewDesc("s3backer_s3_received_bytes_total",
		"Object bytes downloaded.", nil, nil)
	descS3Deleted = prometheus.NewDesc("s3backer_s3_deleted_objects_total",
		"Block objects deleted (zero blocks written), singly or in bulk; the mount flag is not counted.", nil, nil)
	descS3Mismatch = prometheus.NewDesc("s3backer_s3_verify_mismatches_total",
		"Conditional GETs that found the object changed.", nil, nil)

	descRetries = prometheus.NewDesc("s3backer_s3_retries_total",
		"Requests retried after a failure and a pause.", nil, nil)
	descRetryDelay = prometheus.NewDesc("s3backer_s3_retry_delay_seconds_total",
		"Time spent pausing before retries.", nil, nil)
	descGiveUps = prometheus.NewDesc("s3backer_s3_give_ups_total",
		"Operations abandoned once --maxRetryPause was spent.", nil, nil)

	descCacheBlocks = prometheus.NewDesc("s3backer_cache_blocks",
		"Blocks in the block cache.", nil, nil)
	descCacheDirty = prometheus.NewDesc("s3backer_cache_dirty_blocks",
		"Dirty blocks waiting for or in upload: the write-back queue depth.", nil, nil)
	descCacheDirtyRatio = prometheus.NewDesc("s3backer_cache_dirty_ratio",
		"Dirty blocks over the cache's capacity.", nil, nil)
	descCacheReads = prometheus.NewDesc("s3backer_cache_reads_total",
		"Block reads by the block cache, by result (hit or miss).", []string{"result"}, nil)
	descCacheWrites = prometheus.NewDesc("s3backer_cache_writes_total",
		"Block writes by the block cache, by result (hit or miss).", []string{"result"}, nil)
	descCacheReadAhead = prometheus.NewDesc("s3backer_cache_read_ahead_blocks_total",
		"Blocks loaded by read-ahead.", nil, nil)
	descCachePrefetch = prometheus.NewDesc("s3backer_cache_prefetched_blocks_total",
		"Blocks loaded for NBD_CMD_CACHE.", nil, nil)
	descCacheUploads = prometheus.NewDesc("s3backer_cache_uploads_total",
		"Dirty blocks written back.", nil, nil)
	descCacheUploadErrors = prometheus.NewDesc("s3backer_cache_upload_errors_total",
		"Failed write-back attempts.", nil, nil)

	descZeroKnown = prometheus.NewDesc("s3backer_zero_known_blocks",
		"Blocks known to be zero (not stored).", nil, nil)
	descZeroReads = prometheus.NewDesc("s3backer_zero_read_hits_total",
		"Reads answered with zeroes without a request.", nil, nil)
	descZeroWrites = prometheus.NewDesc("s3backer_zero_write_hits_total",
		"Zero writes of known-zero blocks dropped without a request.", nil, nil)

	descNBDConns = prometheus.NewDesc("s3backer_nbd_connections",
		"Open NBD connections.", nil, nil)
	descNBDConnsTotal = prometheus.NewDesc("s3backer_nbd_connections_total",
		"NBD connections accepted.", nil, nil)
	descNBDRequests = prometheus.NewDesc("s3backer_nbd_requests_total",
		"NBD requests served, by command.", []string{"command"}, nil)
	descNBDErrors = prometheus.NewDesc("s3backer_nbd_request_errors_total",
		"NBD requests answered with an error, by command.", []string{"command"}, nil)
	descNBDBytes = prometheus.NewDesc("s3backer_nbd_request_bytes_total",
		"Bytes covered by NBD requests, by command.", []string{"command"}, nil)
)

// collector exports a Registry to Prometheus, reading one Snapshot per
// scrape so that every metric of a scrape is from the same moment.
type collector struct{ r *Registry }

// Collector returns a prometheus.Collector of r's counters.
func (r *Registry) Collector() prometheus.Collector { return collector{r} }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descS3Requests, descS3Latency, descS3InFlight, descS3Sent, descS3Received,
		descS3Deleted, descS3Mismatch, descRetries, descRetryDelay, descGiveUps, descCacheBlocks, descCacheDirty,
		descCacheDirtyRatio, descCacheReads, descCacheWrites, descCacheReadAhead, descCachePrefetch,
		descCacheUploads, descCacheUploadErrors, descZeroKnown, descZeroReads, descZeroWrites, descNBDConns,
		descNBDConnsTotal, descNBDRequests, descNBDErrors, descNBDBytes} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.Snapshot()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if s3 := &s.S3; s3.Used {
		for op := range numOps {
			gauge(descS3InFlight, float64(s3.InFlight[op]), op.String())
			for o := range numOutcomes {
				cell := s3.Cells[op][o]
				// Successes always, so dashboards see zeroes; the rest once
				// they happened, to keep the scrape small.
				if cell.Count == 0 && o != OK {
					continue
				}
				counter(descS3Requests, float64(cell.Count), op.String(), o.String())
				buckets := make(map[float64]uint64, len(LatencyBuckets))
				var cum uint64
				for i, le := range LatencyBuckets {
					cum += cell.Buckets[i]
					buckets[le] = cum
				}
				ch <- prometheus.MustNewConstHistogram(descS3Latency, max(cell.Count, cum), cell.Total.Seconds(),
					buckets, op.String(), o.String())
			}
		}
		counter(descS3Sent, float64(s3.Sent))
		counter(descS3Received, float64(s3.Received))
		counter(descS3Deleted, float64(s3.DeletedKeys))
		counter(descS3Mismatch, float64(s3.Mismatches))
	}
	if s.HasRetry {
		counter(descRetries, float64(s.Retry.Retries))
		counter(descRetryDelay, s.Retry.RetryDelay.Seconds())
		counter(descGiveUps, float64(s.Retry.GiveUps))
	}
	if cs := &s.Cache; s.HasCache {
		gauge(descCacheBlocks, float64(cs.CurrentSize))
		gauge(descCacheDirty, float64(cs.DirtyBlocks))
		gauge(descCacheDirtyRatio, cs.DirtyRatio)
		counter(descCacheReads, float64(cs.ReadHits), "hit")
		counter(descCacheReads, float64(cs.ReadMisses), "miss")
		counter(descCacheWrites, float64(cs.WriteHits), "hit")
		counter(descCacheWrites, float64(cs.WriteMisses), "miss")
		counter(descCacheReadAhead, float64(cs.ReadAheads))
		counter(descCachePrefetch, float64(cs.Prefetches))
		counter(descCacheUploads, float64(cs.Uploads))
		counter(descCacheUploadErrors, float64(cs.UploadErrors))
	}
	if z := &s.Zero; s.HasZero {
		gauge(descZeroKnown, float64(z.KnownZero))
		counter(descZeroReads, float64(z.ZeroReads))
		counter(descZeroWrites, float64(z.DroppedWrites))
	}
	if n := &s.NBD; n.Used {
		gauge(descNBDConns, float64(max(0, n.Connections)))
		counter(descNBDConnsTotal, float64(n.TotalConnections))
		for _, cmd := range n.Commands {
			if cmd.Name == "other" && cmd.Requests == 0 {
				continue
			}
			counter(descNBDRequests, float64(cmd.Requests), cmd.Name)
			counter(descNBDErrors, float64(cmd.Errors), cmd.Name)
			counter(descNBDBytes, float64(cmd.Bytes), cmd.Name)
		}
	}
}
