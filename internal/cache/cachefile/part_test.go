package cachefile

import (
	"bytes"
	"testing"
)

// Part writes survive a crash (the file as a killed process leaves it)
// with the right data: on a dirty slot, a clean one, a zero one; the CRC
// in each entry, computed from the part alone, matches the whole slot.
// A part whose data landed without its entry (killed in between) is
// never taken for valid, nor is the entry it replaces.
func TestPartWrites(t *testing.T) {
	o := newOpener(t)
	f := o.start(4, testRun, 0)
	want := map[uint64][]byte{1: pattern(1), 2: pattern(2), 3: make([]byte, bs)}
	mustPut(t, f.Write(0, 1, pattern(1)))
	mustPut(t, f.Fill(1, 2, pattern(2), "t2"))
	mustPut(t, f.Write(2, 3, nil))
	part := func(slot int, n uint64, off int, p []byte) {
		t.Helper()
		mustPut(t, f.WritePart(slot, n, off, p))
		copy(want[n][off:], p)
		if got := slotData(t, f, slot); !bytes.Equal(got, want[n]) {
			t.Fatalf("slot %d reads back different data after a part write", slot)
		}
	}
	part(0, 1, 100, pattern(9)[:300])
	part(0, 1, 0, pattern(8)[:1])
	part(0, 1, bs-5, pattern(7)[:5])
	part(1, 2, bs/2, pattern(6)[:512])
	part(2, 3, 10, make([]byte, 20)) // zeroes on zeroes
	part(2, 3, 10, pattern(5)[:20])
	part(2, 3, 12, pattern(4)[:4])
	mustPut(t, f.Write(3, 4, pattern(4)))
	base := f.dataOff
	f.f.Close() // killed: nothing synced or closed

	f = o.start(4, testRun, 0)
	r := recovered(f)
	for n, slot := range map[uint64]int{1: 0, 2: 1, 3: 2} {
		if !r[n].Dirty || r[n].Slot != slot || r[n].Zero {
			t.Fatalf("block %d recovered as %+v, want dirty data in slot %d", n, r[n], slot)
		}
		if !bytes.Equal(slotData(t, f, slot), want[n]) {
			t.Fatalf("block %d recovered with different data", n)
		}
	}
	f.f.Close()

	// Killed between a part's data and its entry: block 4 is in doubt
	// and must not come back.
	patchFile(t, o.path, base+3*bs+200, []byte("a part without its entry"))
	f = o.start(4, testRun, 0)
	if r := recovered(f); len(r) != 3 || r[4].Block == 4 {
		t.Fatalf("recovered %+v; want blocks 1, 2, 3 only", r)
	}
}
