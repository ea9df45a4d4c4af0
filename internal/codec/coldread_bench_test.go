package codec

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/volume"
	"github.com/s3backer-go/s3backer/internal/zero"
)

// BenchmarkColdRead: a cold sequential read of a disk of random 1 MiB
// (and 256 KiB) blocks through the stack the front ends serve (volume ->
// zero -> cache -> codec, ETags checked) over the in-memory backend, by
// requests of 256 KiB, 16 in flight (as nbdcopy reads); each iteration a
// fresh cache. "copies" is the path before the buffer hand-off (the GET
// into an object buffer, copied into a block buffer, copied into the
// slot), "direct" the GET straight into the cache slot. What is left is
// the backend's copy into the slot (a socket read in real life), the MD5,
// and the copies out to the requests.
func BenchmarkColdRead(b *testing.B) {
	const (
		diskBytes = 64 << 20
		request   = 256 << 10
		inFlight  = 16
	)
	for _, bs := range []int{256 << 10, 1 << 20} {
		nblocks := uint64(diskBytes / bs)
		be := mem.New()
		seed, err := New(be, Options{BlockSize: bs, NumBlocks: nblocks, VerifyETag: true})
		if err != nil {
			b.Fatal(err)
		}
		data := make([]byte, bs)
		for n := range nblocks {
			_, _ = rand.Read(data)
			if err := seed.WriteBlock(context.Background(), n, data); err != nil {
				b.Fatal(err)
			}
		}
		for _, mode := range []string{"copies", "direct"} {
			b.Run(fmt.Sprintf("%dk/%s", bs>>10, mode), func(b *testing.B) {
				b.SetBytes(diskBytes)
				bufs := make([][]byte, inFlight)
				for i := range bufs {
					bufs[i] = make([]byte, request)
				}
				for b.Loop() {
					cs, err := New(be, Options{BlockSize: bs, NumBlocks: nblocks, VerifyETag: true})
					if err != nil {
						b.Fatal(err)
					}
					opt := cache.Options{Size: int(nblocks), WriteDelay: time.Second}
					if mode == "copies" {
						cs.direct = false
						// Only the Slots methods: no buffer to lend.
						opt.Slots = struct{ cache.Slots }{cache.NewMemSlots(bs, int(nblocks))}
					}
					c, err := cache.New(cs, opt)
					if err != nil {
						b.Fatal(err)
					}
					v := volume.New(zero.New(c, zero.Options{}), volume.Options{})
					var g errgroup.Group
					next := make(chan int64)
					for i := range inFlight {
						g.Go(func() error {
							for off := range next {
								if err := v.ReadAt(context.Background(), bufs[i], off); err != nil {
									return err
								}
							}
							return nil
						})
					}
					for off := int64(0); off < diskBytes; off += request {
						next <- off
					}
					close(next)
					if err := g.Wait(); err != nil {
						b.Fatal(err)
					}
					if err := v.Close(); err != nil {
						b.Fatal(err)
					}
					if st := c.Stats(); st.ReadMisses != nblocks {
						b.Fatalf("%d misses, want %d", st.ReadMisses, nblocks)
					}
				}
			})
		}
	}
}
