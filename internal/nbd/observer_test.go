package nbd

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"
)

// chanObserver sends every event, so the test waits for them rather than
// racing the deferred report after a reply.
type chanObserver chan string

func (o chanObserver) ConnectionOpened() { o <- "open" }
func (o chanObserver) ConnectionClosed() { o <- "close" }
func (o chanObserver) RequestDone(cmd string, length uint32, failed bool) {
	if failed {
		cmd += " failed"
	}
	o <- cmd + " " + strconv.FormatUint(uint64(length), 10)
}

func (o chanObserver) next(t *testing.T) string {
	t.Helper()
	select {
	case ev := <-o:
		return ev
	case <-time.After(testIOTimeout):
		t.Fatal("no observer event")
		return ""
	}
}

func TestObserver(t *testing.T) {
	obs := make(chanObserver, 16)
	dev := newMemDevice(testSize)
	opt := testOptions()
	opt.Observer = obs
	_, c, errc := pipeSession(t, dev, opt)
	c.negotiate(true, true)
	if ev := obs.next(t); ev != "open" {
		t.Fatalf("first event %q", ev)
	}
	c.expectErrno(0, cmdWrite, 0, 4096, pattern(4096, 2), 0)
	c.expectErrno(0, cmdRead, 0, 512, nil, 0)
	c.expectErrno(0, cmdFlush, 0, 0, nil, 0)
	dev.hook = func(_ context.Context, op string, _, _ int64) error {
		if op == "trim" {
			return errors.New("injected")
		}
		return nil
	}
	c.do(0, cmdTrim, 0, 4096, nil)
	c.expectErrno(0, cmdRead, testSize, 512, nil, errInval) // invalid: never reaches the device
	c.send(0, cmdDisc, 0, 0, 0, nil)
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 5 {
		got = append(got, obs.next(t))
	}
	// A request is reported after its reply is sent, and the client sends
	// the next one on that reply: two reports may come in either order.
	// The connection's close comes after them all.
	want := []string{"flush 0", "read 512", "trim failed 4096", "write 4096"}
	if slices.Sort(got[:4]); !slices.Equal(got[:4], want) || got[4] != "close" {
		t.Fatalf("events %q, want %q in any order, then close", got, want)
	}
	select {
	case ev := <-obs:
		t.Fatalf("extra event %q", ev)
	default:
	}
}
