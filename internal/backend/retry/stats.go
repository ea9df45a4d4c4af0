package retry

import "time"

// Stats are the decorator's counters since New, for the stats file and
// metrics (s3backer shows http_num_retries and http_total_retry_delay).
type Stats struct {
	Attempts   int64         // requests made to the wrapped backend
	Retries    int64         // attempts that followed a failure and a pause
	RetryDelay time.Duration // total time spent pausing
	GiveUps    int64         // operations abandoned once the pause budget was spent
}

// Stats returns the counters so far.
func (b *Backend) Stats() Stats {
	return Stats{
		Attempts:   b.attempts.Load(),
		Retries:    b.retries.Load(),
		RetryDelay: time.Duration(b.delay.Load()),
		GiveUps:    b.giveUps.Load(),
	}
}
