package nbd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"syscall"
	"testing"
)

// modes runs f with simple replies and with structured replies (plus the
// base:allocation context).
func modes(t *testing.T, f func(t *testing.T, structured bool)) {
	for _, structured := range []bool{false, true} {
		t.Run(fmt.Sprintf("structured=%v", structured), func(t *testing.T) { f(t, structured) })
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestCommands(t *testing.T) {
	modes(t, func(t *testing.T, structured bool) {
		dev := newMemDevice(testSize)
		_, c, errc := pipeSession(t, dev, testOptions())
		size, flags := c.negotiate(structured, structured)
		if size != testSize {
			t.Fatalf("size %d", size)
		}
		if got := flags&flagSendDF != 0; got != structured {
			t.Fatalf("SEND_DF %v with structured=%v", got, structured)
		}

		data := pattern(8192, 1)
		c.expectErrno(cmdFlagFUA, cmdWrite, 4096, 8192, data, 0)
		if w := dev.opsOf("write"); len(w) != 1 || !w[0].fua || w[0].off != 4096 || w[0].length != 8192 {
			t.Fatalf("device writes %+v", w)
		}
		c.expectErrno(0, cmdWrite, 100, 0, nil, 0) // zero length: no-op
		if len(dev.opsOf("write")) != 1 {
			t.Fatal("zero-length write reached the device")
		}

		r := c.expectErrno(0, cmdRead, 4096, 8192, nil, 0)
		if !bytes.Equal(r.data, data) {
			t.Fatal("read back differs")
		}
		if structured && (len(r.chunks) != 1 || r.chunks[0].typ != replyTypeOffsetData || be.Uint64(r.chunks[0].payload) != 4096) {
			t.Fatalf("structured read chunks %+v", r.chunks)
		}
		if r.structured != structured {
			t.Fatalf("read reply structured=%v", r.structured)
		}
		r = c.expectErrno(0, cmdRead, 0, 0, nil, 0)
		if len(r.data) != 0 || (structured && r.chunks[0].typ != replyTypeNone) {
			t.Fatalf("zero-length read reply %+v", r)
		}
		if structured {
			// DF: exactly one content chunk.
			r = c.expectErrno(cmdFlagDF, cmdRead, 4096, 8192, nil, 0)
			if len(r.chunks) != 1 || !bytes.Equal(r.data, data) {
				t.Fatalf("DF read %+v", r.chunks)
			}
		}

		c.expectErrno(0, cmdFlush, 0, 0, nil, 0)
		if len(dev.opsOf("flush")) != 1 {
			t.Fatal("flush did not reach the device")
		}

		c.expectErrno(cmdFlagFUA, cmdTrim, 4096, 4096, nil, 0)
		if tr := dev.opsOf("trim"); len(tr) != 1 || !tr[0].fua || tr[0].off != 4096 || tr[0].length != 4096 {
			t.Fatalf("device trims %+v", tr)
		}
		c.expectErrno(cmdFlagNoHole|cmdFlagFUA, cmdWriteZeroes, 8192, 2048, nil, 0)
		c.expectErrno(cmdFlagFastZero, cmdWriteZeroes, 10240, 2048, nil, 0)
		// The device cannot be fast and allocate: ENOTSUP reaches the client.
		c.expectErrno(cmdFlagFastZero|cmdFlagNoHole, cmdWriteZeroes, 0, 4096, nil, errNotSup)
		z := dev.opsOf("zero")
		if len(z) != 3 || z[0].zf != (ZeroFlags{FUA: true, NoHole: true}) || z[1].zf != (ZeroFlags{Fast: true}) {
			t.Fatalf("device zeroes %+v", z)
		}
		if !allZero(dev.bytesAt(4096, 8192)) {
			t.Fatal("trim/zero did not zero")
		}

		c.expectErrno(0, cmdCache, 0, 65536, nil, 0)
		if ca := dev.opsOf("cache"); len(ca) != 1 || ca[0].length != 65536 {
			t.Fatalf("device caches %+v", ca)
		}
		// FUA is accepted on every command.
		c.expectErrno(cmdFlagFUA, cmdRead, 0, 512, nil, 0)
		c.expectErrno(cmdFlagFUA, cmdFlush, 0, 0, nil, 0)

		if !structured {
			c.expectErrno(0, cmdBlockStatus, 0, 4096, nil, errInval)
		}

		c.send(0, cmdDisc, 9, 0, 0, nil)
		c.expectClosed()
		if err := waitErr(t, errc); err != nil {
			t.Fatalf("ServeConn after DISC: %v", err)
		}
	})
}

// blockStatus decodes a block status reply into (length, flags) pairs.
func blockStatus(t *testing.T, r reply) [][2]uint32 {
	t.Helper()
	if len(r.chunks) != 1 || r.chunks[0].typ != replyTypeBlockStatus || r.chunks[0].flags&replyFlagDone == 0 {
		t.Fatalf("block status chunks %+v", r.chunks)
	}
	p := r.chunks[0].payload
	if len(p) < 12 || (len(p)-4)%8 != 0 || be.Uint32(p) != metaBaseAllocationID {
		t.Fatalf("block status payload % x", p)
	}
	var out [][2]uint32
	for d := p[4:]; len(d) > 0; d = d[8:] {
		out = append(out, [2]uint32{be.Uint32(d), be.Uint32(d[4:])})
	}
	return out
}

func TestBlockStatus(t *testing.T) {
	dev := newMemDevice(testSize)
	copy(dev.data[4096:], pattern(8192, 1)) // data in [4096, 12288)
	_, c, _ := transmissionSession(t, dev, testOptions(), true, true)

	got := blockStatus(t, c.expectErrno(0, cmdBlockStatus, 0, 65536, nil, 0))
	want := [][2]uint32{{4096, stateHole | stateZero}, {8192, 0}, {65536 - 12288, stateHole | stateZero}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("extents %v, want %v", got, want)
	}
	got = blockStatus(t, c.expectErrno(cmdFlagReqOne, cmdBlockStatus, 0, 65536, nil, 0))
	if fmt.Sprint(got) != fmt.Sprint(want[:1]) {
		t.Fatalf("REQ_ONE extents %v", got)
	}
	got = blockStatus(t, c.expectErrno(cmdFlagReqOne, cmdBlockStatus, 100, 1000, nil, 0))
	if fmt.Sprint(got) != fmt.Sprint([][2]uint32{{1000, stateHole | stateZero}}) {
		t.Fatalf("REQ_ONE inside one extent %v", got)
	}
	c.expectErrno(0, cmdBlockStatus, 0, 0, nil, errInval)
	c.expectErrno(0, cmdBlockStatus, testSize-512, 1024, nil, errInval)
	c.expectErrno(cmdFlagNoHole, cmdBlockStatus, 0, 512, nil, errInval)
}

// extentsDevice returns canned extents, to test how they are clipped.
type extentsDevice struct {
	*memDevice
	exts []Extent
}

func (d extentsDevice) Extents(context.Context, int64, int64) ([]Extent, error) { return d.exts, nil }

func TestBlockStatusSanitisesDeviceExtents(t *testing.T) {
	many := make([]Extent, 3*maxExtents)
	for i := range many {
		many[i] = Extent{Length: 1, Hole: i%2 == 0}
	}
	for _, tc := range []struct {
		name string
		exts []Extent
		want string
	}{
		{"none", nil, "[[4096 0]]"},
		{"zero lengths skipped", []Extent{{Length: 0}, {Length: -5}, {Length: 100, Zero: true}}, "[[100 2]]"},
		{"clipped to request", []Extent{{Length: 1 << 40, Hole: true}}, "[[4096 1]]"},
		{"equal runs merged", []Extent{{Length: 10}, {Length: 20}, {Length: 30, Hole: true}}, "[[30 0] [30 1]]"},
		{"capped", many, fmt.Sprintf("%d descriptors", maxExtents)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := extentsDevice{newMemDevice(testSize), tc.exts}
			_, c, _ := transmissionSession(t, dev, testOptions(), true, true)
			length := uint32(4096)
			if len(tc.exts) > maxExtents {
				length = uint32(len(tc.exts))
			}
			got := blockStatus(t, c.expectErrno(0, cmdBlockStatus, 0, length, nil, 0))
			s := fmt.Sprint(got)
			if len(got) > 10 {
				s = fmt.Sprintf("%d descriptors", len(got))
			}
			if s != tc.want {
				t.Fatalf("got %s, want %s", s, tc.want)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	modes(t, func(t *testing.T, structured bool) {
		dev := newMemDevice(testSize)
		opt := testOptions()
		opt.MaxPayload = 64 << 10
		_, c, _ := transmissionSession(t, dev, opt, structured, structured)

		const end = testSize
		for _, tc := range []struct {
			name    string
			flags   uint16
			typ     uint16
			off     uint64
			length  uint32
			payload []byte
			want    uint32
		}{
			{"unknown command", 0, 99, 0, 0, nil, errInval},
			{"resize is not supported", 0, 8, 0, 0, nil, errInval},
			{"unknown flag", 1 << 9, cmdRead, 0, 512, nil, errInval},
			{"NO_HOLE on read", cmdFlagNoHole, cmdRead, 0, 512, nil, errInval},
			{"REQ_ONE on trim", cmdFlagReqOne, cmdTrim, 0, 512, nil, errInval},
			{"FAST_ZERO on write (payload consumed)", cmdFlagFastZero, cmdWrite, 0, 512, make([]byte, 512), errInval},
			{"PAYLOAD_LEN not negotiated", cmdFlagPayloadLen, cmdWrite, 0, 512, make([]byte, 512), errInval},
			{"flush with offset", 0, cmdFlush, 512, 0, nil, errInval},
			{"flush with length", 0, cmdFlush, 0, 512, nil, errInval},
			{"read past end", 0, cmdRead, end - 512, 1024, nil, errInval},
			{"read at end", 0, cmdRead, end, 1, nil, errInval},
			{"read offset beyond end", 0, cmdRead, end + 1, 0, nil, errInval},
			{"read offset overflow", 0, cmdRead, math.MaxUint64, 2, nil, errInval},
			{"write past end (payload consumed)", 0, cmdWrite, end - 512, 1024, make([]byte, 1024), errNoSpc},
			{"write zeroes past end", 0, cmdWriteZeroes, end, 512, nil, errNoSpc},
			{"trim past end", 0, cmdTrim, end - 1, 2, nil, errInval},
			{"cache past end", 0, cmdCache, math.MaxUint64 - 10, 100, nil, errInval},
			{"read over the maximum payload", 0, cmdRead, 0, 64<<10 + 1, nil, errOverflow},
			{"write over the maximum payload (discarded)", 0, cmdWrite, 0, 128 << 10, make([]byte, 128<<10), errInval},
		} {
			r := c.expectErrno(tc.flags, tc.typ, tc.off, tc.length, tc.payload, tc.want)
			if r.structured != structured {
				t.Fatalf("%s: structured=%v", tc.name, r.structured)
			}
			if structured && r.msg == "" {
				t.Fatalf("%s: structured error without a message", tc.name)
			}
		}
		if !structured {
			c.expectErrno(cmdFlagDF, cmdRead, 0, 512, nil, errInval) // DF needs structured replies
		}
		// Payloads were consumed: the stream is still in sync.
		c.expectErrno(0, cmdWrite, 0, 4, []byte("sync"), 0)
		if r := c.expectErrno(0, cmdRead, 0, 4, nil, 0); string(r.data) != "sync" {
			t.Fatalf("read %q", r.data)
		}
		// Large no-payload commands are fine (limited by the export only).
		c.expectErrno(0, cmdWriteZeroes, 0, testSize, nil, 0)
		if w := dev.opsOf("write"); len(w) != 1 {
			t.Fatalf("invalid writes reached the device: %+v", w)
		}
	})
}

func TestReadOnlyDevice(t *testing.T) {
	modes(t, func(t *testing.T, structured bool) {
		dev := newMemDevice(testSize)
		dev.readOnly = true
		_, c, _ := pipeSession(t, dev, testOptions())
		_, flags := c.negotiate(structured, false)
		if flags&flagReadOnly == 0 || flags&(flagSendTrim|flagSendWriteZeroes|flagSendFastZero|flagSendFUA) != 0 {
			t.Fatalf("read-only transmission flags %#x", flags)
		}
		c.expectErrno(0, cmdWrite, 0, 4096, make([]byte, 4096), errPerm)
		c.expectErrno(0, cmdTrim, 0, 4096, nil, errPerm)
		c.expectErrno(0, cmdWriteZeroes, 0, 4096, nil, errPerm)
		c.expectErrno(0, cmdRead, 0, 4096, nil, 0)
		c.expectErrno(0, cmdFlush, 0, 0, nil, 0)
		for _, op := range []string{"write", "trim", "zero"} {
			if len(dev.opsOf(op)) != 0 {
				t.Fatalf("%s reached a read-only device", op)
			}
		}
	})
}

func TestOversizedWriteDisconnects(t *testing.T) {
	_, c, errc := transmissionSession(t, newMemDevice(testSize), testOptions(), true, false)
	// 64 MiB: above both MaxPayload and 32 MiB. Only the header is sent;
	// the server must neither wait for nor allocate the payload.
	c.send(0, cmdWrite, 1, 0, 64<<20, nil)
	c.expectClosed()
	if err := waitErr(t, errc); err == nil {
		t.Fatal("ServeConn returned nil")
	}
}

func TestBadRequestMagic(t *testing.T) {
	_, c, errc := transmissionSession(t, newMemDevice(testSize), testOptions(), false, false)
	c.write(reqBytes(0, cmdRead, 1, 0, 512, nil)[:4])
	c.write(make([]byte, 24)) // rest of a header, after a correct magic: fine
	c.readReply(nil)          // a zero-length READ
	c.write(cat(u32(0x25609514), make([]byte, 24)))
	c.expectClosed()
	if err := waitErr(t, errc); err == nil {
		t.Fatal("ServeConn returned nil for a bad magic")
	}
}

func TestDeviceErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want uint32
	}{
		{syscall.EPERM, errPerm},
		{fmt.Errorf("put block: %w", syscall.EROFS), errPerm},
		{syscall.EIO, errIO},
		{syscall.ENOMEM, errNoMem},
		{syscall.EINVAL, errInval},
		{syscall.ENOSPC, errNoSpc},
		{syscall.EDQUOT, errNoSpc},
		{syscall.EFBIG, errNoSpc},
		{syscall.EOVERFLOW, errOverflow},
		{syscall.ENOTSUP, errNotSup},
		{syscall.EOPNOTSUPP, errNotSup},
		{syscall.ESHUTDOWN, errShutdown},
		{syscall.ENOENT, errIO},
		{errors.New("s3: 500"), errIO},
		{context.DeadlineExceeded, errIO},
		{fmt.Errorf("op: %w", context.Canceled), errShutdown},
	} {
		if got := errnoOf(tc.err); got != tc.want {
			t.Errorf("errnoOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if errnoOf(nil) != 0 {
		t.Error("errnoOf(nil) != 0")
	}
	// ENOTSUP only for a fast zero; anywhere else it becomes EINVAL.
	if commandErrno(syscall.ENOTSUP, cmdWriteZeroes, cmdFlagFastZero) != errNotSup ||
		commandErrno(syscall.ENOTSUP, cmdWriteZeroes, 0) != errInval ||
		commandErrno(syscall.ENOTSUP, cmdTrim, 0) != errInval {
		t.Error("commandErrno ENOTSUP handling")
	}

	// End to end, through a device hook.
	modes(t, func(t *testing.T, structured bool) {
		dev := newMemDevice(testSize)
		var inject error
		dev.hook = func(ctx context.Context, op string, off, length int64) error { return inject }
		_, c, _ := transmissionSession(t, dev, testOptions(), structured, structured)
		for _, tc := range []struct {
			err   error
			typ   uint16
			flags uint16
			want  uint32
		}{
			{fmt.Errorf("wrapped: %w", syscall.ENOSPC), cmdWrite, 0, errNoSpc},
			{syscall.EROFS, cmdTrim, 0, errPerm},
			{errors.New("opaque"), cmdRead, 0, errIO},
			{syscall.ENOTSUP, cmdTrim, 0, errInval},
			{syscall.ENOTSUP, cmdWriteZeroes, cmdFlagFastZero, errNotSup},
			{syscall.ENOTSUP, cmdWriteZeroes, 0, errInval},
			{syscall.EIO, cmdFlush, 0, errIO},
			{syscall.EIO, cmdCache, 0, errIO},
			{syscall.EIO, cmdBlockStatus, 0, errIO},
		} {
			if tc.typ == cmdBlockStatus && !structured {
				continue
			}
			inject = tc.err
			var length uint32
			var payload []byte
			if tc.typ != cmdFlush {
				length = 512
			}
			if tc.typ == cmdWrite {
				payload = make([]byte, 512)
			}
			c.expectErrno(tc.flags, tc.typ, 0, length, payload, tc.want)
		}
	})
}
