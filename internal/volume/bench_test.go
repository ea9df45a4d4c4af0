package volume

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/zero"
)

// BenchmarkCachedSmallReads: 4 KiB reads at random offsets of cached
// 256 KiB blocks through the stack the front ends serve (volume -> zero
// -> cache), from parallel goroutines. "whole" hides the part reader
// (every read copies a whole block first), "parts" is the real stack.
func BenchmarkCachedSmallReads(b *testing.B) {
	const (
		blockSize = 256 << 10
		nblocks   = 64
	)
	for _, mode := range []string{"whole", "parts"} {
		b.Run(mode, func(b *testing.B) {
			l := memstore.New(blockSize, nblocks)
			data := make([]byte, blockSize)
			for n := range uint64(nblocks) {
				data[0] = byte(n) | 1
				if err := l.WriteBlock(ctx, n, data); err != nil {
					b.Fatal(err)
				}
			}
			c, err := cache.New(l, cache.Options{Size: nblocks, Threads: 4, WriteDelay: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			var top blockstore.Store = zero.New(c, zero.Options{})
			if mode == "whole" {
				top = struct{ blockstore.Store }{top} // only the Store methods
			}
			v := New(top, Options{})
			defer v.Close()
			for n := range int64(nblocks) { // warm the cache
				if err := v.ReadAt(ctx, data, n*blockSize); err != nil {
					b.Fatal(err)
				}
			}
			var seed atomic.Uint64
			b.SetBytes(4096)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), 0))
				p := make([]byte, 4096)
				for pb.Next() {
					off := rng.Int64N(blockSize*nblocks/4096) * 4096
					if err := v.ReadAt(ctx, p, off); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkCachedSmallWrites: 4 KiB writes at random offsets of cached
// blocks (256 KiB and 1 MiB) through volume -> zero -> cache, inside the
// write delay (no write-back), from parallel goroutines: what fio's 4 KiB
// random writes cost the process. "whole" hides the part reader and
// writer (every write reads the whole block out and writes it back),
// "parts" is the real stack (the 4 KiB are copied into the cached block).
func BenchmarkCachedSmallWrites(b *testing.B) {
	for _, blockSize := range []int{256 << 10, 1 << 20} {
		const nblocks = 32
		for _, mode := range []string{"whole", "parts"} {
			b.Run(fmt.Sprintf("%dk/%s", blockSize>>10, mode), func(b *testing.B) {
				l := memstore.New(blockSize, nblocks)
				c, err := cache.New(l, cache.Options{Size: nblocks, Threads: 4, WriteDelay: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				var top blockstore.Store = zero.New(c, zero.Options{})
				if mode == "whole" {
					top = struct{ blockstore.Store }{top} // only the Store methods
				}
				v := New(top, Options{})
				defer v.Close()
				data := make([]byte, blockSize)
				for n := range int64(nblocks) { // fill the cache
					data[0] = byte(n) | 1
					if err := v.WriteAt(ctx, data, n*int64(blockSize), false); err != nil {
						b.Fatal(err)
					}
				}
				var seed atomic.Uint64
				b.SetBytes(4096)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					rng := rand.New(rand.NewPCG(seed.Add(1), 0))
					p := make([]byte, 4096)
					p[0] = 1
					for pb.Next() {
						off := rng.Int64N(int64(blockSize)*nblocks/4096) * 4096
						if err := v.WriteAt(ctx, p, off, false); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}
