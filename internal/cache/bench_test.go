package cache

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
	"github.com/s3backer-go/s3backer/internal/volume"
)

const (
	benchBlock  = 256 << 10
	benchBlocks = 64
)

// BenchmarkCachedReads: 4 KiB reads at random offsets of 256 KiB blocks,
// all cached, through volume + cache, from parallel goroutines.
func BenchmarkCachedReads(b *testing.B) {
	l := memstore.New(benchBlock, benchBlocks)
	for n := range uint64(benchBlocks) {
		if err := l.WriteBlock(bg, n, pattern(benchBlock, int(n))); err != nil {
			b.Fatal(err)
		}
	}
	c := newCache(b, l, Options{Size: benchBlocks, WriteDelay: DefaultWriteDelay})
	v := volume.New(c, volume.Options{})
	buf := make([]byte, benchBlock)
	for n := range int64(benchBlocks) { // warm the cache
		if err := v.ReadAt(bg, buf, n*benchBlock); err != nil {
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
			off := rng.Int64N(benchBlock*benchBlocks/4096) * 4096
			if err := v.ReadAt(bg, p, off); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	if st := c.Stats(); st.ReadMisses != benchBlocks {
		b.Fatalf("%d misses: not all hits", st.ReadMisses)
	}
}

// BenchmarkWriteAbsorb: whole 256 KiB block writes through volume + cache
// into a working set the cache holds, inside the write delay: the rate at
// which the cache absorbs writes.
func BenchmarkWriteAbsorb(b *testing.B) {
	l := memstore.New(benchBlock, 4*benchBlocks)
	c := newCache(b, l, Options{Size: 2 * benchBlocks, WriteDelay: time.Hour})
	v := volume.New(c, volume.Options{})
	data := pattern(benchBlock, 7)
	var seed atomic.Uint64
	b.SetBytes(benchBlock)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 0))
		for pb.Next() {
			off := rng.Int64N(benchBlocks) * benchBlock
			if err := v.WriteAt(bg, data, off, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.StopTimer()
	if st := c.Stats(); st.Uploads != 0 {
		b.Fatalf("%d uploads inside the write delay", st.Uploads)
	}
}

// BenchmarkWriteBack: writes of ever new blocks through a small cache, so
// every write waits for write-back to a fast store below: the throughput
// of the write-back pipeline itself.
func BenchmarkWriteBack(b *testing.B) {
	const nblocks = 4096
	l := memstore.New(benchBlock, nblocks)
	c := newCache(b, l, Options{Size: 32, WriteDelay: DefaultWriteDelay})
	data := pattern(benchBlock, 9)
	b.SetBytes(benchBlock)
	b.ResetTimer()
	for i := range b.N {
		if err := c.WriteBlock(bg, uint64(i%nblocks), data); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Flush(bg); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkCachedPartReads is BenchmarkCachedReads without the volume's
// whole-block copy: 4 KiB parts of cached blocks straight from ReadPart,
// what the volume could do for partial reads.
func BenchmarkCachedPartReads(b *testing.B) {
	l := memstore.New(benchBlock, benchBlocks)
	for n := range uint64(benchBlocks) {
		if err := l.WriteBlock(bg, n, pattern(benchBlock, int(n))); err != nil {
			b.Fatal(err)
		}
	}
	c := newCache(b, l, Options{Size: benchBlocks, WriteDelay: DefaultWriteDelay})
	buf := make([]byte, benchBlock)
	for n := range uint64(benchBlocks) {
		if err := c.ReadBlock(bg, n, buf); err != nil {
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
			n := rng.Uint64N(benchBlocks)
			off := rng.IntN(benchBlock/4096) * 4096
			if err := c.ReadPart(bg, n, off, p); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
