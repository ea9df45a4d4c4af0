package cachefile

import (
	"math/rand/v2"
	"testing"
)

// TestCRCReplace checks the CRC of a part-written slot, computed from the
// old CRC and the part alone, against the CRC of the whole new data.
func TestCRCReplace(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 64, 4096, 256 << 10, 1 << 20} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		sum := crc(data)
		for range 20 {
			off := rng.IntN(size)
			n := rng.IntN(min(size-off, 8192) + 1)
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			if rng.IntN(4) == 0 {
				copy(p, data[off:]) // an unchanged part
			}
			sum = crcReplace(sum, data[off:off+n], p, size-off-n)
			copy(data[off:], p)
			if want := crc(data); sum != want {
				t.Fatalf("size %d: %d bytes at %d: CRC %08x, want %08x", size, n, off, sum, want)
			}
		}
	}
}
