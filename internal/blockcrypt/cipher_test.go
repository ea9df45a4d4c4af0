package blockcrypt

import (
	"bytes"
	"errors"
	"testing"
)

func testCipher(t testing.TB, name string) *Cipher {
	t.Helper()
	c, err := New(name, []byte("secret"), Salt("b", "p/"), 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSealOpenSizes(t *testing.T) {
	for _, name := range []string{"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"} {
		c := testCipher(t, name)
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 4096} {
			pt := bytes.Repeat([]byte{byte(n) | 1}, n)
			ct, mac, err := c.Seal(nil, pt, uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if want := (n/16 + 1) * 16; len(ct) != want {
				t.Errorf("%s: %d bytes seal to %d, want %d", name, n, len(ct), want)
			}
			got, err := c.Open(nil, ct, uint64(n), mac[:])
			if err != nil || !bytes.Equal(got, pt) {
				t.Errorf("%s: %d bytes: %v", name, n, err)
			}
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	c := testCipher(t, "AES-128-CBC")
	ct, mac, _ := c.Seal(nil, []byte("some compressed block"), 3)
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x80; return b }
	for name, f := range map[string]func() error{
		"body":      func() error { _, err := c.Open(nil, flip(ct, 5), 3, mac[:]); return err },
		"last byte": func() error { _, err := c.Open(nil, flip(ct, len(ct)-1), 3, mac[:]); return err },
		"mac":       func() error { _, err := c.Open(nil, ct, 3, flip(mac[:], 19)); return err },
		"short mac": func() error { _, err := c.Open(nil, ct, 3, mac[:19]); return err },
		"no mac":    func() error { _, err := c.Open(nil, ct, 3, nil); return err },
		"block":     func() error { _, err := c.Open(nil, ct, 4, mac[:]); return err },
		"truncated": func() error { _, err := c.Open(nil, ct[:16], 3, mac[:]); return err },
	} {
		if err := f(); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", name, err)
		}
	}
	// Authentic but malformed (a writer with the key but a bug): refused.
	for _, bad := range [][]byte{nil, make([]byte, 15), make([]byte, 32)} {
		m := c.MAC(3, bad)
		if _, err := c.Open(nil, bad, 3, m[:]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: %v, want ErrMalformed", len(bad), err)
		}
	}
	if _, _, err := c.Seal(nil, nil, 1<<32); err == nil {
		t.Error("block 2^32 sealed")
	}
}

// A block costs no allocation once the pools are warm.
func TestNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts under the race detector")
	}
	c := testCipher(t, "AES-256-CBC")
	pt := bytes.Repeat([]byte("x"), 4000)
	dst := make([]byte, 0, 8192)
	out := make([]byte, 0, 8192)
	allocs := testing.AllocsPerRun(100, func() {
		ct, mac, err := c.Seal(dst, pt, 9)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Open(out, ct, 9, mac[:]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per seal and open", allocs)
	}
}

func BenchmarkSeal(b *testing.B) {
	c := testCipher(b, "AES-128-CBC")
	pt := make([]byte, 1<<20)
	dst := make([]byte, 0, len(pt)+16)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = c.Seal(dst, pt, 1)
	}
}
