package retry

import "time"

// backoff is s3backer's pause schedule with equal jitter: the nominal pause
// starts at initial and doubles; the pause taken is drawn from
// (nominal/2, nominal]; the last one is cut to what is left of the budget.
//
// Equal rather than full jitter: each pause keeps at least half its nominal
// length, so a server that answered SlowDown really gets s3backer's relief
// and the budget buys about as many attempts as s3backer's (9 by default,
// at most a few more), while the block cache's many workers, which tend to
// fail together, still spread out. Full jitter may draw pauses near zero:
// bursts of instant retries and an attempt count that varies widely.
type backoff struct {
	initial, budget time.Duration
	rand            func() float64

	nominal, spent time.Duration
}

// next returns the pause before the next attempt, or false once the pauses
// taken add up to the budget.
func (b *backoff) next() (time.Duration, bool) {
	left := b.budget - b.spent
	if left <= 0 {
		return 0, false
	}
	switch {
	case b.nominal == 0:
		b.nominal = b.initial
	case b.nominal < b.budget: // past the budget it no longer matters; stop before it overflows
		b.nominal *= 2
	}
	d := b.nominal - time.Duration(b.rand()*float64(b.nominal/2))
	d = min(d, left)
	b.spent += d
	return d, true
}
