package faultproxy

import (
	"maps"
	"sync"
)

// Tally counts requests by method and by kind.
type Tally struct {
	Total    int64
	ByMethod map[string]int64
	ByKind   map[Kind]int64
}

// Counts are the proxy's request counts since Start or ResetCounts.
type Counts struct {
	// Received: every request the proxy read, faulted or not.
	Received Tally
	// Forwarded: requests upstream answered, so they took effect whatever
	// the client then saw (ResetAfter, Truncate, a Stall that ended).
	Forwarded Tally
	// Injected: how many times each fault was applied.
	Injected map[Fault]int64
}

type counter struct {
	mu sync.Mutex
	c  Counts
}

func newTally() Tally { return Tally{ByMethod: map[string]int64{}, ByKind: map[Kind]int64{}} }

func (t *Tally) add(method string, kind Kind) {
	t.Total++
	t.ByMethod[method]++
	t.ByKind[kind]++
}

func (t Tally) clone() Tally {
	return Tally{Total: t.Total, ByMethod: maps.Clone(t.ByMethod), ByKind: maps.Clone(t.ByKind)}
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c = Counts{Received: newTally(), Forwarded: newTally(), Injected: map[Fault]int64{}}
}

func (c *counter) received(method string, kind Kind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.Received.add(method, kind)
}

func (c *counter) forwarded(method string, kind Kind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.Forwarded.add(method, kind)
}

func (c *counter) injected(f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.Injected[f]++
}

// Counts returns a copy of the counts so far.
func (p *Proxy) Counts() Counts {
	p.counts.mu.Lock()
	defer p.counts.mu.Unlock()
	c := p.counts.c
	return Counts{Received: c.Received.clone(), Forwarded: c.Forwarded.clone(), Injected: maps.Clone(c.Injected)}
}

// ResetCounts sets every count back to zero.
func (p *Proxy) ResetCounts() { p.counts.reset() }
