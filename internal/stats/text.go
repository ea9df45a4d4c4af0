package stats

import (
	"bytes"
	"fmt"
	"time"
)

// Text renders the counters since the last Reset in s3backer's stats-file
// format: one "name value" line each, the name padded to 28 columns,
// s3backer's lines first under s3backer's names, then s3backer-go's own.
// Sections of layers that are not stacked are left out.
func (r *Registry) Text() []byte { return r.sinceReset().Text() }

// Text renders s as Registry.Text does.
func (s Snapshot) Text() []byte {
	var b bytes.Buffer
	line := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "%-28s "+format+"\n", append([]any{name}, args...)...)
	}
	count := func(name string, n uint64) { line(name, "%d", n) }
	seconds := func(name string, d time.Duration) { line(name, "%.3f sec", d.Seconds()) }
	avg := func(name string, c Cell) {
		var v float64
		if c.Count > 0 {
			v = c.Total.Seconds() / float64(c.Count)
		}
		line(name, "%.3f sec", v)
	}

	if s3 := &s.S3; s3.Used {
		deletes := addCells(s3.Cell(OpDelete, OK), s3.Cell(OpDeleteMany, OK))
		count("http_normal_blocks_read", s3.Count(OK, OpGet))
		count("http_normal_blocks_written", s3.Count(OK, OpPut))
		count("http_zero_blocks_read", s3.Count(NotFound, OpGet))
		count("http_zero_blocks_written", s3.DeletedKeys)
		if s.ListBlocks && s.HasZero {
			count("http_empty_blocks_read", s.Zero.ZeroReads)
			count("http_empty_blocks_written", s.Zero.DroppedWrites)
		}
		count("http_gets", s3.Count(OK, OpGet))
		count("http_puts", s3.Count(OK, OpPut))
		count("http_deletes", deletes.Count)
		avg("http_avg_get_time", s3.Cell(OpGet, OK))
		avg("http_avg_put_time", s3.Cell(OpPut, OK))
		avg("http_avg_delete_time", deletes)
		count("http_unauthorized", s3.CountAll(Unauthorized))
		count("http_forbidden", s3.CountAll(Forbidden))
		count("http_stale", s3.CountAll(Stale))
		count("http_redirect", s3.CountAll(Redirect))
		count("http_verified", s3.Count(NotModified, OpGet))
		// A conditional GET that returned the object found it changed.
		count("http_mismatch", s3.Mismatches)
		count("http_5xx_error", s3.CountAll(HTTP5xx))
		count("http_4xx_error", s3.CountAll(HTTP4xx))
		count("http_3xx_error", s3.CountAll(HTTP3xx))
		count("http_other_error", s3.CountAll(HTTPOther))
		count("http_canceled_writes", s3.Count(Canceled, OpPut, OpDelete, OpDeleteMany))
		count("http_num_retries", uint64(s.Retry.Retries))
		seconds("http_total_retry_delay", s.Retry.RetryDelay)
		count("curl_timeouts", s3.CountAll(Timeout))
		count("curl_connect_failed", s3.CountAll(ConnectFailed))
		count("curl_host_unknown", s3.CountAll(HostUnknown))
		count("curl_other_error", s3.CountAll(OtherError))
	}
	if c := &s.Cache; s.HasCache {
		line("block_cache_current_size", "%d blocks", c.CurrentSize)
		line("block_cache_initial_size", "%d blocks", c.InitialSize)
		line("block_cache_dirty_ratio", "%.8f", c.DirtyRatio)
		count("block_cache_read_hits", c.ReadHits)
		count("block_cache_read_misses", c.ReadMisses)
		line("block_cache_read_hit_ratio", "%.8f", c.ReadHitRatio())
		count("block_cache_write_hits", c.WriteHits)
		count("block_cache_write_misses", c.WriteMisses)
		line("block_cache_write_hit_ratio", "%.8f", c.WriteHitRatio())
		count("block_cache_verified", c.Verified)
		count("block_cache_mismatch", c.Mismatch)
	}
	if z := &s.Zero; s.HasZero {
		line("zero_block_cache_size", "%d blocks", z.KnownZero)
		count("zero_block_cache_read_hits", z.ZeroReads)
		count("zero_block_cache_write_hits", z.DroppedWrites)
	}
	count("out_of_memory_errors", 0) // Go has no recoverable allocation failure

	// s3backer-go's own lines.
	if s3 := &s.S3; s3.Used {
		count("http_heads", s3.Count(OK, OpHead))
		count("http_lists", s3.Count(OK, OpList))
		count("http_bulk_deletes", s3.Count(OK, OpDeleteMany))
		count("http_not_found", s3.CountAll(NotFound))
		count("http_bytes_sent", s3.Sent)
		count("http_bytes_received", s3.Received)
		count("http_requests_in_flight", uint64(max(0, sumInFlight(s3))))
		count("http_give_ups", uint64(s.Retry.GiveUps))
	}
	if c := &s.Cache; s.HasCache {
		line("block_cache_dirty_blocks", "%d blocks", c.DirtyBlocks)
		count("block_cache_read_ahead", c.ReadAheads)
		count("block_cache_prefetches", c.Prefetches)
		count("block_cache_uploads", c.Uploads)
		count("block_cache_upload_errors", c.UploadErrors)
		count("block_cache_expired", c.Expired)
	}
	if n := &s.NBD; n.Used {
		count("nbd_connections", uint64(max(0, n.Connections)))
		count("nbd_connections_total", n.TotalConnections)
		for _, c := range n.Commands {
			if c.Name == "other" && c.Requests == 0 {
				continue
			}
			count("nbd_"+c.Name+"_requests", c.Requests)
			count("nbd_"+c.Name+"_errors", c.Errors)
			if c.Name != "flush" {
				count("nbd_"+c.Name+"_bytes", c.Bytes)
			}
		}
	}
	for _, l := range s.Extra {
		line(l.Name, "%s", l.Value)
	}
	return b.Bytes()
}

func addCells(a, b Cell) Cell {
	a.Count += b.Count
	a.Total += b.Total
	for i := range a.Buckets {
		a.Buckets[i] += b.Buckets[i]
	}
	return a
}

func sumInFlight(s *S3Snapshot) int64 {
	var n int64
	for _, v := range s.InFlight {
		n += v
	}
	return n
}
