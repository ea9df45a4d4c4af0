package faultproxy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Fault is one kind of failure the proxy can inject.
type Fault string

const (
	None            Fault = ""
	SlowDown        Fault = "503 SlowDown"
	TooManyRequests Fault = "429 TooManyRequests"
	InternalError   Fault = "500 InternalError"
	NotImplemented  Fault = "501 NotImplemented"
	ResetBefore     Fault = "reset before forwarding"
	ResetAfter      Fault = "reset after forwarding"
	Stall           Fault = "stall"
	Truncate        Fault = "truncated body"
)

// Faults are the probabilities (0 to 1) that a request meets each fault.
// One draw per request picks at most one fault, so the probabilities must
// add up to at most 1. With one request at a time, the same Seed gives the
// same faults in the same order.
type Faults struct {
	// SlowDown, TooManyRequests and InternalError answer with that status
	// and an S3 XML error body, without forwarding; so does NotImplemented,
	// as a store that lacks an operation would (Google Cloud Storage's
	// answer to a multi-object delete, until 2026).
	SlowDown, TooManyRequests, InternalError, NotImplemented float64
	// ResetBefore resets the client's connection without forwarding.
	ResetBefore float64
	// ResetAfter forwards the request, waits for upstream's answer, then
	// resets the client's connection: the request took effect but the
	// client sees an error.
	ResetAfter float64
	// Stall holds the request for StallFor and then forwards it; with
	// StallFor 0, until the client gives up. The request body is read
	// first, so the proxy notices when a client gives up on a PUT.
	Stall    float64
	StallFor time.Duration
	// Truncate forwards the request, then sends upstream's status and
	// headers (with the full Content-Length) and half the body, then closes
	// the connection. Responses without a body are passed through.
	Truncate float64

	// Kinds limits the faults to these kinds of request (empty: all).
	// Other requests pass through and take no draw.
	Kinds []Kind
	// Seed seeds the draws.
	Seed uint64
}

// faultState is one SetFaults' settings and the random source for them.
type faultState struct {
	f     Faults
	bands []band
	mu    sync.Mutex
	rng   *rand.Rand
}

type band struct {
	upTo  float64
	fault Fault
}

func newFaultState(f Faults) *faultState {
	f.Kinds = slices.Clone(f.Kinds)
	s := &faultState{f: f, rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))}
	total := 0.0
	for _, b := range []struct {
		p     float64
		fault Fault
	}{
		{f.SlowDown, SlowDown}, {f.TooManyRequests, TooManyRequests}, {f.InternalError, InternalError}, {f.NotImplemented, NotImplemented},
		{f.ResetBefore, ResetBefore}, {f.ResetAfter, ResetAfter}, {f.Stall, Stall}, {f.Truncate, Truncate},
	} {
		if b.p < 0 || b.p > 1 {
			panic(fmt.Sprintf("faultproxy: probability of %s is %v, not in [0, 1]", b.fault, b.p))
		}
		total += b.p
		s.bands = append(s.bands, band{total, b.fault})
	}
	if total > 1+1e-9 {
		panic(fmt.Sprintf("faultproxy: fault probabilities add up to %v, more than 1", total))
	}
	return s
}

// SetFaults replaces the faults (and restarts the draws from f.Seed) for
// requests that arrive from now on. It is safe to call at any time.
func (p *Proxy) SetFaults(f Faults) { p.faults.Store(newFaultState(f)) }

// draw picks the fault for a request of this kind, with the stall
// duration of the same settings.
func (p *Proxy) draw(kind Kind) (Fault, time.Duration) {
	s := p.faults.Load()
	if len(s.f.Kinds) > 0 && !slices.Contains(s.f.Kinds, kind) {
		return None, 0
	}
	if s.bands[len(s.bands)-1].upTo == 0 {
		return None, 0 // no faults: spend no draw
	}
	s.mu.Lock()
	x := s.rng.Float64()
	s.mu.Unlock()
	for _, b := range s.bands {
		if x < b.upTo {
			return b.fault, s.f.StallFor
		}
	}
	return None, 0
}
