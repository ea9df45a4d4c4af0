package cache_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
	"github.com/s3backer-go/s3backer/internal/cache"
	"github.com/s3backer-go/s3backer/internal/cache/cachefile"
)

// startFile opens and starts a cache file for a run of --test (no mount
// token), recovering its dirty blocks.
func startFile(t testing.TB, path string, bs int, n uint64, slots int) *cachefile.File {
	t.Helper()
	f, err := cachefile.Open(cachefile.Options{Path: path, BlockSize: bs, NumBlocks: n, Slots: slots})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Plan(cachefile.Policy{Test: true, RecoverDirty: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(0); err != nil {
		t.Fatal(err)
	}
	return f
}

// The randomized model test of the cache, with its data in a cache file.
func TestModelCacheFile(t *testing.T) {
	configs := []struct {
		name string
		opt  cache.Options
	}{
		{"writeback", cache.Options{Threads: 4, WriteDelay: 2 * time.Millisecond, ReadAhead: 3, ReadAheadTrigger: 2}},
		{"tiny", cache.Options{Threads: 2, WriteDelay: time.Millisecond, Timeout: time.Millisecond}},
	}
	sizes := map[string]int{"writeback": 24, "tiny": 3}
	seeds := []uint64{1, 2}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, cfg := range configs {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed%d", cfg.name, seed), func(t *testing.T) {
				t.Parallel()
				opt := cfg.opt
				opt.Slots = startFile(t, filepath.Join(t.TempDir(), "cache"), cache.ModelBlockSize, cache.ModelBlocks, sizes[cfg.name])
				cache.RunModel(t, opt, seed)
			})
		}
	}
}

// The conformance suite through cache + cache file; Reopen closes the
// cache and opens a new one on the same file and store below: flushed
// data must be there (from the file or from below).
func TestStoreCacheFile(t *testing.T) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run(fmt.Sprintf("delay=%v", delay), func(t *testing.T) {
			paths := map[blockstore.Store]string{}
			mk := func(t *testing.T, path string, below blockstore.Store) blockstore.Store {
				f := startFile(t, path, below.BlockSize(), below.NumBlocks(), 16)
				c, err := cache.New(below, cache.Options{Slots: f, Threads: 4, WriteDelay: delay})
				if err != nil {
					t.Fatal(err)
				}
				paths[c] = path
				return c
			}
			storetest.Run(t, storetest.Harness{
				New: func(t *testing.T, bs int, n uint64) blockstore.Store {
					return mk(t, filepath.Join(t.TempDir(), "cache"), memstore.New(bs, n))
				},
				Reopen: func(t *testing.T, s blockstore.Store) blockstore.Store {
					c := s.(*cache.Store)
					below := c.Lower().(blockstore.Store)
					if err := c.Close(); err != nil {
						t.Fatal(err)
					}
					return mk(t, paths[c], below)
				},
			})
		})
	}
}

// A crash: the cache file as a killed process leaves it (every write it
// made, nothing closed) is copied while the cache runs; a new cache on
// the copy, over the same store below, writes back the dirty blocks and
// serves the clean ones, checked below first.
func TestCacheFileCrash(t *testing.T) {
	const bs, n = 4096, 64
	ctx := t.Context()
	dir := t.TempDir()
	below := memstore.New(bs, n)
	f := startFile(t, filepath.Join(dir, "cache"), bs, n, 32)
	c, err := cache.New(below, cache.Options{Slots: f, Threads: 4, WriteDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	data := func(seed int) []byte {
		b := make([]byte, bs)
		for i := range b {
			b[i] = byte(seed + i*7 + 1)
		}
		return b
	}
	for i := range uint64(10) {
		if err := c.WriteBlock(ctx, i, data(int(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Block 1 changes below behind the cache's back.
	if err := below.WriteBlock(ctx, 1, data(100)); err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]byte{0: data(0), 1: data(100)}
	for i := uint64(2); i < 10; i++ {
		want[i] = data(int(i))
	}
	for i := uint64(5); i < 15; i++ { // dirty at the crash
		want[i] = data(int(i) + 50)
		if err := c.WriteBlock(ctx, i, want[i]); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, filepath.Join(dir, "cache"), filepath.Join(dir, "crashed"))

	f2 := startFile(t, filepath.Join(dir, "crashed"), bs, n, 32)
	if got := len(f2.Recovered()); got != 15 {
		t.Fatalf("%d blocks recovered, want 15", got)
	}
	c2, err := cache.New(below, cache.Options{Slots: f2, Threads: 4, WriteDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, bs)
	for i, w := range want {
		if err := below.ReadBlock(ctx, i, buf); err != nil || (i >= 5 && string(buf) != string(w)) {
			t.Fatalf("block %d below after recovery: %v", i, err)
		}
		if err := c2.ReadBlock(ctx, i, buf); err != nil || string(buf) != string(w) {
			t.Fatalf("block %d read after recovery: %v", i, err)
		}
	}
	if st := c2.Stats(); st.Mismatch != 1 || st.Verified != 4 {
		t.Fatalf("verified %d, mismatch %d; want 4, 1", st.Verified, st.Mismatch)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkCacheFile: the write path's cost of keeping the cache in a file
// rather than in memory, 256 KiB blocks. absorb: writes into a working
// set the cache holds, inside the write delay (a data pwrite, an entry
// pwrite and a CRC32C per write; no sync). writeback: writes of ever new
// blocks through a small cache over a fast store, so each write also
// waits for a write-back, whose clean entry follows an fdatasync shared by
// the concurrent write-backs.
func BenchmarkCacheFile(b *testing.B) {
	const bs, n = 256 << 10, 4096
	data := make([]byte, bs)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	for _, kind := range []string{"memory", "file"} {
		slots := func(b *testing.B, size int) cache.Slots {
			if kind == "memory" {
				return cache.NewMemSlots(bs, size)
			}
			f := startFile(b, filepath.Join(b.TempDir(), "cache"), bs, n, size)
			return f
		}
		b.Run(kind+"/absorb", func(b *testing.B) {
			const set = 256
			c, err := cache.New(memstore.New(bs, n), cache.Options{Slots: slots(b, 2*set), WriteDelay: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(bs)
			i := 0
			for b.Loop() {
				if err := c.WriteBlock(b.Context(), uint64(i%set), data); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(kind+"/writeback", func(b *testing.B) {
			c, err := cache.New(memstore.New(bs, n), cache.Options{Slots: slots(b, 32), WriteDelay: cache.DefaultWriteDelay})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(bs)
			i := 0
			for b.Loop() {
				if err := c.WriteBlock(b.Context(), uint64(i%n), data); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if err := c.Flush(b.Context()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
