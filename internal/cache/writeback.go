package cache

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"time"
)

// kickLocked wakes an idle worker, if any: there may be work. A worker
// that takes a job wakes another while work remains, so one kick per
// event is enough.
func (s *Store) kickLocked() {
	if s.idle > 0 {
		s.work.Signal()
	}
}

// scheduleLocked makes sure the scheduler wakes by t.
func (s *Store) scheduleLocked(t tick) {
	if t < s.timerAt {
		s.timerAt = t
		select {
		case s.resched <- struct{}{}:
		default:
		}
	}
}

// shiftLocked is how much earlier than its deadline a dirty block is
// written as the cache fills with dirty blocks (s3backer's formula).
func (s *Store) shiftLocked() tick {
	if s.delay == 0 {
		return 0
	}
	r := float64(s.dirty) / float64(s.size) / s.maxRatio
	if r >= 1 {
		return s.delay
	}
	return tick(float64(s.delay) * r)
}

// enqueueLocked puts a dirty entry in its write-back queue.
func (s *Store) enqueueLocked(e *entry) {
	now := s.now()
	switch {
	case len(e.waits) > 0:
		e.q = qUrgent
		s.urgent.pushBack(e)
		s.kickLocked()
	case e.failures > 0:
		e.q = qRetry
		heap.Push(&s.retryQ, e)
		s.wakeForLocked(s.retryQ[0].at, now)
	default:
		e.q = qDirty
		heap.Push(&s.dirtyQ, e)
		s.wakeForLocked(s.dirtyQ[0].at-s.shiftLocked(), now)
	}
}

// wakeForLocked gets work due at t done: now, or by the scheduler.
func (s *Store) wakeForLocked(t, now tick) {
	if t <= now {
		s.kickLocked()
	} else {
		s.scheduleLocked(t)
	}
}

func (s *Store) dequeueLocked(e *entry) {
	switch e.q {
	case qUrgent:
		s.urgent.remove(e)
	case qDirty:
		heap.Remove(&s.dirtyQ, e.hidx)
	case qRetry:
		heap.Remove(&s.retryQ, e.hidx)
	}
	e.q = qNone
}

// attachLocked makes w wait for an upload of e carrying its current data,
// and makes e urgent.
func (s *Store) attachLocked(e *entry, w *flushWait) {
	e.waits = append(e.waits, waitReq{w: w, seq: e.wseq, after: e.attempts})
	w.pending++
	if e.state == stDirty && e.q != qUrgent {
		s.dequeueLocked(e)
		e.q = qUrgent
		s.urgent.pushBack(e)
		s.kickLocked()
	}
}

// job kinds
const (
	jobNone = iota
	jobUpload
	jobLoad
)

// nextJobLocked takes the most pressing job: urgent uploads, due uploads
// (and, while writers wait for room, the oldest dirty blocks at once),
// due retries, then read-ahead and prefetch loads.
func (s *Store) nextJobLocked() (int, *entry) {
	now := s.now()
	var e *entry
	switch {
	case s.urgent.n > 0:
		e = s.urgent.front()
	case len(s.dirtyQ) > 0 && (s.dirtyQ[0].at-s.shiftLocked() <= now || s.spaceWaiters > s.busy.n):
		e = s.dirtyQ[0]
	case len(s.retryQ) > 0 && s.retryQ[0].at <= now:
		e = s.retryQ[0]
	}
	if e != nil {
		s.dequeueLocked(e)
		e.state = stUploading
		e.attempts++
		s.busy.pushBack(e)
		// The scheduler sleeps only for what was not due yet: tell it
		// about the new heads of the queues.
		if len(s.dirtyQ) > 0 {
			s.wakeForLocked(s.dirtyQ[0].at-s.shiftLocked(), now)
		}
		if len(s.retryQ) > 0 {
			s.wakeForLocked(s.retryQ[0].at, now)
		}
		return jobUpload, e
	}
	if e := s.readAheadLocked(); e != nil {
		return jobLoad, e
	}
	if e := s.prefetchLocked(); e != nil {
		return jobLoad, e
	}
	return jobNone, nil
}

// readyLocked says whether a worker would find a job now.
func (s *Store) readyLocked(now tick) bool {
	switch {
	case s.urgent.n > 0,
		len(s.dirtyQ) > 0 && (s.dirtyQ[0].at-s.shiftLocked() <= now || s.spaceWaiters > s.busy.n),
		len(s.retryQ) > 0 && s.retryQ[0].at <= now:
		return true
	}
	return (s.readAheadWantedLocked() || s.pfN > 0) && s.slotAvailableLocked(true)
}

func (s *Store) worker() {
	defer s.wg.Done()
	buf := make([]byte, s.bs)
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed {
		kind, e := s.nextJobLocked()
		if kind == jobNone {
			// What was due may not be any more (fewer dirty blocks
			// delay the rest): make sure the scheduler wakes for it.
			s.scheduleLocked(s.nextWakeLocked(s.now()))
			s.idle++
			s.work.Wait()
			s.idle--
			continue
		}
		if s.readyLocked(s.now()) {
			s.kickLocked()
		}
		s.mu.Unlock()
		switch kind {
		case jobUpload:
			s.upload(e, buf)
		case jobLoad:
			s.load(e, buf)
		}
		s.mu.Lock()
	}
}

// scheduler sleeps until the earliest deadline, retry or expiry, and then
// expires clean blocks and wakes a worker.
func (s *Store) scheduler() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Duration(never))
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		now := s.now()
		s.expireLocked(now)
		if s.readyLocked(now) {
			s.kickLocked()
		}
		next := s.nextWakeLocked(now)
		s.timerAt = next
		s.mu.Unlock()
		var fire <-chan time.Time
		if next != never {
			timer.Reset(next - now)
			fire = timer.C
		}
		select {
		case <-fire:
		case <-s.resched:
		case <-s.quit:
			return
		}
	}
}

// nextWakeLocked is the earliest time after now at which something
// becomes due. What is due already is the workers' business: they take it
// as soon as they are free, and reschedule what comes after.
func (s *Store) nextWakeLocked(now tick) tick {
	next := never
	consider := func(t tick) {
		if t > now && t < next {
			next = t
		}
	}
	if len(s.dirtyQ) > 0 {
		consider(s.dirtyQ[0].at - s.shiftLocked())
	}
	if len(s.retryQ) > 0 {
		consider(s.retryQ[0].at)
	}
	if s.timeout > 0 {
		for _, l := range [2]*list{&s.lru, &s.lruProt} {
			for e := l.back(); e != nil; e = l.before(e) {
				if e.pins == 0 {
					consider(e.at + s.timeout)
					break
				}
			}
		}
	}
	return next
}

// expireLocked evicts clean blocks unused for Timeout.
func (s *Store) expireLocked(now tick) {
	if s.timeout <= 0 {
		return
	}
	for _, l := range [2]*list{&s.lru, &s.lruProt} {
		for e := l.back(); e != nil; {
			prev := l.before(e)
			if e.at+s.timeout > now {
				break
			}
			if e.pins == 0 {
				s.evictLocked(e)
				s.st.expired++
			}
			e = prev
		}
	}
}

// upload writes e's data below, from a copy so that writers need not
// wait, and records the outcome.
func (s *Store) upload(e *entry, buf []byte) {
	e.dmu.RLock()
	s.mu.Lock()
	up, zero := e.wseq, e.zero
	e.upSeq = up
	s.mu.Unlock()
	var err error
	var data []byte
	if !zero {
		err = s.slots.Read(e.slot, 0, buf)
		data = buf
	}
	e.dmu.RUnlock()
	var tag string
	if err != nil {
		err = fmt.Errorf("reading the cached copy: %w", err)
	} else {
		tag, err = s.writeBelow(s.ctx, e.n, data)
	}
	if err == nil {
		// Record the clean state while no writer can slip in between.
		e.dmu.Lock()
		s.mu.Lock()
		same := e.wseq == up
		s.mu.Unlock()
		if same {
			if cerr := s.slots.Clean(e.slot, e.n, tag); cerr != nil {
				s.log.Error("block cache: cannot record a written-back block as clean", "block", e.n, "err", cerr)
			}
		}
		s.mu.Lock()
		s.finishUploadLocked(e, up, nil)
		s.mu.Unlock()
		e.dmu.Unlock()
		return
	}
	s.mu.Lock()
	s.finishUploadLocked(e, up, err)
	s.mu.Unlock()
}

func (s *Store) finishUploadLocked(e *entry, up uint64, err error) {
	s.busy.remove(e)
	now := s.now()
	var werr error
	if err != nil {
		werr = fmt.Errorf("block cache: writing back block %d: %w", e.n, err)
	}
	keep := e.waits[:0]
	for _, r := range e.waits {
		if r.seq <= up && (err == nil || e.attempts > r.after) {
			r.w.resolve(werr)
		} else {
			keep = append(keep, r)
		}
	}
	clear(e.waits[len(keep):])
	e.waits = keep
	if len(keep) == 0 {
		e.waits = nil
	}
	if err == nil {
		s.st.uploads++
		if e.failures > 0 {
			s.log.Info("block cache: block written back after failures", "block", e.n, "failures", e.failures)
		}
		e.failures = 0
		if e.wseq == up {
			e.state = stClean
			s.dirty--
			e.at = now
			s.lruFor(e).pushFront(e)
			if s.timeout > 0 {
				s.scheduleLocked(now + s.timeout)
			}
			s.spaceFreedLocked()
			return
		}
		// Written meanwhile: the newer data goes up after the delay.
		e.state = stDirty
		e.at = now + s.delay
		s.enqueueLocked(e)
		return
	}
	s.st.uploadErrors++
	e.failures++
	backoff := min(maxRetryBackoff, minRetryBackoff<<min(e.failures-1, 16))
	if s.ctx.Err() == nil {
		// Every attempt is already a persistent failure (the retry layer
		// below gave up): say so, but not every minute for ever.
		level := slog.LevelDebug
		if e.failures == 1 || e.failures%10 == 0 {
			level = slog.LevelWarn
		}
		s.log.Log(context.Background(), level, "block cache: write-back failed; the block stays dirty and is retried",
			"block", e.n, "failures", e.failures, "retryIn", backoff, "err", err)
	}
	e.state = stDirty
	e.at = now + backoff
	s.enqueueLocked(e) // urgent if writes newer than this attempt are awaited
}

// flushEntries waits until every dirty block (of blocks, if not nil) has
// been uploaded with the data it has now, or one such upload failed.
func (s *Store) flushEntries(ctx context.Context, blocks []uint64) error {
	w := newFlushWait()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	var todo []*entry
	if blocks == nil {
		todo = make([]*entry, 0, s.dirty)
		for _, l := range [2]*list{&s.urgent, &s.busy} {
			for e := l.front(); e != nil; e = e.next {
				if e == &l.root {
					break
				}
				todo = append(todo, e)
			}
		}
		todo = append(todo, s.dirtyQ...)
		todo = append(todo, s.retryQ...)
	} else {
		for _, n := range blocks {
			if e := s.entries[n]; e != nil && (e.state == stDirty || e.state == stUploading) {
				todo = append(todo, e)
			}
		}
	}
	for _, e := range todo {
		s.attachLocked(e, w)
	}
	s.mu.Unlock()
	return s.awaitUploads(ctx, w)
}
