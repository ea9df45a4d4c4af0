package nbddev

import "runtime"

// The kernel records as the device's owner (/sys/block/nbdX/pid) the
// thread that attached it, not the process. A Go thread may be any of the
// process's threads, and threads can exit while the process lives, so the
// attaching call runs on a thread of its own that lives exactly as long as
// the attachment: the recorded id then names a live thread while we serve,
// and no thread once we are gone, which is what stale-attachment detection
// relies on.

// anchor is a thread kept for the lifetime of an attachment.
type anchor struct {
	calls   chan func()
	release chan struct{}
}

func newAnchor() *anchor {
	a := &anchor{calls: make(chan func()), release: make(chan struct{})}
	go func() {
		// Never unlocked: the thread exits with this goroutine.
		runtime.LockOSThread()
		for {
			select {
			case fn := <-a.calls:
				fn()
			case <-a.release:
				return
			}
		}
	}()
	return a
}

// do runs fn on the anchor thread and waits for it.
func (a *anchor) do(fn func()) {
	done := make(chan struct{})
	a.calls <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// close lets the thread exit.
func (a *anchor) close() { close(a.release) }
