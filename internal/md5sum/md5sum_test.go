package md5sum

import (
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestSumConcurrent compares Sum with crypto/md5 on many goroutines at
// once, each an upload under way (Sending) as the S3 backend's PUTs are,
// so that the multi-buffer path runs, over lengths around the MD5 block
// and 32 KiB boundaries.
func TestSumConcurrent(t *testing.T) {
	b0 := batched.Load()
	lengths := []int{0, 1, 63, 64, 65, minLen - 1, minLen, 32<<10 - 1, 32 << 10, 32<<10 + 1, 100_000, 256 << 10, 1<<20 + 7}
	const workers = 24
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 40 {
				n := lengths[(w+i)%len(lengths)]
				b := make([]byte, n)
				for j := range b {
					b[j] = byte(r.Uint32())
				}
				done := Sending()
				got := Sum(b)
				done()
				if want := md5.Sum(b); got != want {
					errs <- fmt.Errorf("worker %d: Sum of %d bytes = %x, want %x", w, n, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if haveLanes && batched.Load() == b0 {
		t.Error("24 uploads at once, and no body was hashed in a batch")
	}
}

// TestSingleUploadDoesNotWait: one upload after another (a lone writer)
// never waits for a batch, however fast they come: the next body cannot
// come before this one is hashed. (Waiting for it made each PUT wait out
// the whole window.)
func TestSingleUploadDoesNotWait(t *testing.T) {
	b := make([]byte, 256<<10)
	w0 := waits.Load()
	for range 50 {
		done := Sending()
		got := Sum(b)
		done()
		if want := md5.Sum(b); got != want {
			t.Fatalf("Sum = %x, want %x", got, want)
		}
	}
	if n := waits.Load() - w0; n != 0 {
		t.Errorf("%d of 50 lone uploads waited for a batch", n)
	}
}

// TestTickets: many readers at once, each taking a Ticket, then summing
// or cancelling it, get crypto/md5's digest, batched or not; nothing is
// left expected.
func TestTickets(t *testing.T) {
	lengths := []int{0, 100, minLen, 32<<10 + 1, 100_000, 256 << 10, 1<<20 + 7}
	for _, workers := range []int{1, 3, 8, 24} {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 3))
				for i := range 30 {
					tk := Expect()
					time.Sleep(time.Duration(r.IntN(500)) * time.Microsecond) // the GET
					if i%5 == 4 {
						tk.Cancel()
						tk.Cancel()
						continue
					}
					b := make([]byte, lengths[r.IntN(len(lengths))])
					for j := range b {
						b[j] = byte(r.Uint32())
					}
					if got, want := tk.Sum(b), md5.Sum(b); got != want {
						errs <- fmt.Errorf("%d workers, worker %d: Sum of %d bytes = %x, want %x", workers, w, len(b), got, want)
						return
					}
					tk.Cancel() // no-op after Sum
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		batcher.mu.Lock()
		if batcher.expected != 0 || batcher.forming != nil {
			t.Errorf("%d workers: %d still expected, batch forming: %v", workers, batcher.expected, batcher.forming != nil)
		}
		batcher.mu.Unlock()
	}
}

// TestTicketAloneDoesNotWait: with no other reads in flight, a Sum does
// not wait for a batch; nor with too few to make one.
func TestTicketAloneDoesNotWait(t *testing.T) {
	b := make([]byte, 1<<20)
	w0 := waits.Load()
	for range 5 {
		tk := Expect()
		if got, want := tk.Sum(b), md5.Sum(b); got != want {
			t.Fatalf("Sum = %x, want %x", got, want)
		}
	}
	others := make([]*Ticket, minBatch-2)
	for i := range others {
		others[i] = Expect()
	}
	if got, want := Expect().Sum(b), md5.Sum(b); got != want {
		t.Fatalf("Sum = %x, want %x", got, want)
	}
	for _, o := range others {
		o.Cancel()
	}
	if n := waits.Load() - w0; n != 0 {
		t.Errorf("%d batches waited", n)
	}
}

// TestSumAlone covers the single-caller path.
func TestSumAlone(t *testing.T) {
	b := make([]byte, 300<<10)
	for i := range b {
		b[i] = byte(i * 7)
	}
	if got, want := Sum(b), md5.Sum(b); got != want {
		t.Fatalf("Sum = %x, want %x", got, want)
	}
}

func BenchmarkSum(b *testing.B) {
	for _, size := range []int{256 << 10, 1 << 20} {
		for _, par := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("%dk/p%d", size>>10, par), func(b *testing.B) {
				bufs := make([][]byte, par)
				for i := range bufs {
					bufs[i] = make([]byte, size)
				}
				b.SetBytes(int64(size))
				b.ResetTimer()
				var wg sync.WaitGroup
				per := b.N/par + 1
				for i := range par {
					wg.Go(func() {
						for range per {
							Sum(bufs[i])
						}
					})
				}
				wg.Wait()
			})
		}
	}
}

// TestReadDoesNotWaitForUploads: with uploads under way but no other read
// in flight, a read's body is hashed at once.
func TestReadDoesNotWaitForUploads(t *testing.T) {
	var dones []func()
	for range 4 {
		dones = append(dones, Sending())
	}
	defer func() {
		for _, d := range dones {
			d()
		}
	}()
	b := make([]byte, 256<<10)
	w0 := waits.Load()
	for range 10 {
		if got, want := Expect().Sum(b), md5.Sum(b); got != want {
			t.Fatalf("Sum = %x, want %x", got, want)
		}
	}
	if n := waits.Load() - w0; n != 0 {
		t.Errorf("%d of 10 reads waited for uploads", n)
	}
}
