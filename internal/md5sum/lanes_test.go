package md5sum

import (
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSumLanes checks the multi-buffer digests against crypto/md5 for
// batches of every size, with buffers of equal and of different lengths
// (whole 64-byte blocks, tails, shorter than a block, empty).
func TestSumLanes(t *testing.T) {
	if !haveLanes {
		t.Log("no multi-buffer MD5 on this CPU: checking the crypto/md5 fallback only")
	}
	checkSumLanes(t)
}

func checkSumLanes(t *testing.T) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	fill := rand.NewChaCha8([32]byte{1})
	lengths := []func() int{
		func() int { return 256 << 10 },
		func() int { return 64 * (1 + rng.IntN(100)) },
		func() int { return rng.IntN(5000) },
		func() int { return rng.IntN(64) },
	}
	for round := range 400 {
		k := 1 + round%lanes
		bufs := make([][]byte, k)
		size := lengths[round%len(lengths)]
		same := round%3 == 0
		n := size()
		for i := range bufs {
			if !same {
				n = size()
			}
			bufs[i] = make([]byte, n)
			_, _ = fill.Read(bufs[i])
		}
		out := make([][Size]byte, k)
		sumLanes(bufs, out)
		for i, b := range bufs {
			if want := md5.Sum(b); out[i] != want {
				t.Fatalf("round %d: buffer %d of %d (%d bytes): %x, want %x", round, i, k, len(b), out[i], want)
			}
		}
	}
}

// FuzzSumLanes: any split of the input into up to 8 buffers hashes as
// crypto/md5 does.
func FuzzSumLanes(f *testing.F) {
	f.Add([]byte("abc"), uint8(3))
	f.Add(make([]byte, 1000), uint8(8))
	f.Fuzz(func(t *testing.T, data []byte, k uint8) {
		k = 1 + k%lanes
		bufs := make([][]byte, k)
		for i := range bufs {
			// Buffer i starts i bytes in: different lengths and alignments.
			bufs[i] = data[min(int(i)*7, len(data)):]
		}
		out := make([][Size]byte, k)
		sumLanes(bufs, out)
		for i, b := range bufs {
			if want := md5.Sum(b); out[i] != want {
				t.Fatalf("buffer %d of %d (%d bytes): %x, want %x", i, k, len(b), out[i], want)
			}
		}
	})
}

// BenchmarkSumLanes: bytes hashed per second by one goroutine, 8 buffers
// at a time, against crypto/md5 one at a time.
func BenchmarkSumLanes(b *testing.B) {
	for _, size := range []int{256 << 10, 1 << 20} {
		bufs := make([][]byte, lanes)
		for i := range bufs {
			bufs[i] = make([]byte, size)
		}
		out := make([][Size]byte, lanes)
		b.Run(fmt.Sprintf("lanes/%dk", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size * lanes))
			for b.Loop() {
				sumLanes(bufs, out)
			}
		})
		b.Run(fmt.Sprintf("crypto/%dk", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				md5.Sum(bufs[0])
			}
		})
	}
}
