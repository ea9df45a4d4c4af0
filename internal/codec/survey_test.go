package codec

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/blockkey"
)

// listCounter counts the keys a backend hands to List callbacks, to check
// that ranges stop at their end instead of listing the whole prefix.
type listCounter struct {
	*mem.Backend
	seen atomic.Int64
	fail error // if set, every List fails with it
}

func (b *listCounter) List(ctx context.Context, prefix, startAfter string, fn func(string) error) error {
	if b.fail != nil {
		return b.fail
	}
	return b.Backend.List(ctx, prefix, startAfter, func(k string) error {
		b.seen.Add(1)
		return fn(k)
	})
}

// surveyBucket stores about two thirds of numBlocks blocks of a disk under
// prefix, plus every kind of key that is not one of its blocks.
func surveyBucket(t *testing.T, prefix string, hash bool, numBlocks uint64) (*listCounter, map[uint64]bool) {
	t.Helper()
	b := &listCounter{Backend: mem.New()}
	names := blockkey.Namer{Prefix: prefix, HashPrefix: hash, NumBlocks: numBlocks}
	want := map[uint64]bool{}
	for n := uint64(0); n < numBlocks; n++ {
		if n%3 != 1 || n == numBlocks-1 {
			want[n] = true
			put(t, b, names.Name(n), []byte{1}, backend.Meta{})
		}
	}
	past := blockkey.Namer{Prefix: prefix, HashPrefix: hash, NumBlocks: 1 << 32}
	junk := []string{
		prefix + "s3backer-mounted",
		prefix, prefix + "0", prefix + "0000000", prefix + "0000000/", prefix + "0000000/x",
		prefix + "000000001", prefix + "00000001.tmp", prefix + "00000001.XyZ123", prefix + "00000002/sub",
		prefix + "ffffffff", prefix + "fffffffff", prefix + "zzz",
		past.Name(numBlocks), past.Name(numBlocks + 1), past.Name(1<<32 - 1), // past the end
		"disk0/00000001", "disk10/00000002", "disk1-00000001", "e/00000003", "00000005x", "a", "~",
	}
	for _, n := range []uint64{0xab, 0x1a2b, 0xfe} {
		junk = append(junk, prefix+fmt.Sprintf("%08X", n)) // upper case
		h := blockkey.Hash(uint32(n))
		junk = append(junk,
			prefix+fmt.Sprintf("%08X-%08x", h, n),
			prefix+fmt.Sprintf("%08x-%08X", h, n),
			prefix+fmt.Sprintf("%08x-%08x", h+1, n), // wrong hash
			prefix+fmt.Sprintf("%08x_%08x", h, n),
			prefix+fmt.Sprintf("%08x-%08x", h, n)+".tmp",
			prefix+fmt.Sprintf("%08x", n)+"-x",
		)
		if !hash {
			junk = append(junk, prefix+fmt.Sprintf("%08x-%08x", h, n)) // hashed name, plain disk
		} else {
			junk = append(junk, prefix+fmt.Sprintf("%08x", n)) // plain name, hashed disk
		}
	}
	for _, k := range junk {
		if _, ok := names.Parse(k); ok {
			t.Fatalf("junk key %q parses", k)
		}
		put(t, b, k, []byte{1}, backend.Meta{})
	}
	return b, want
}

func survey(t *testing.T, s *Store) map[uint64]int {
	t.Helper()
	var mu sync.Mutex
	got := map[uint64]int{}
	if err := s.Survey(context.Background(), func(n uint64) {
		mu.Lock()
		got[n]++
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestSurvey(t *testing.T) {
	const numBlocks = 6000
	for _, prefix := range []string{"disk1/", ""} {
		for _, hash := range []bool{false, true} {
			b, want := surveyBucket(t, prefix, hash, numBlocks)
			total := len(b.Keys())
			for _, threads := range []int{1, 3, 16, 0} {
				t.Run(fmt.Sprintf("prefix=%q/hash=%v/threads=%d", prefix, hash, threads), func(t *testing.T) {
					s := newStore(t, b, Options{Prefix: prefix, HashPrefix: hash, BlockSize: 512, NumBlocks: numBlocks, ListThreads: threads})
					lists, seen := b.Counts().Lists, b.seen.Load()
					got := survey(t, s)
					for n, c := range got {
						if !want[n] {
							t.Errorf("block %d reported but not stored", n)
						}
						if c != 1 {
							t.Errorf("block %d reported %d times", n, c)
						}
					}
					if len(got) != len(want) {
						missing := 0
						for n := range want {
							if got[n] == 0 {
								missing++
							}
						}
						t.Errorf("%d of %d stored blocks not reported", missing, len(want))
					}
					wantLists := int64(threads)
					if threads == 0 {
						wantLists = DefaultListThreads
					}
					if l := b.Counts().Lists - lists; l != wantLists {
						t.Errorf("%d listings, want one per range (%d)", l, wantLists)
					}
					// Every range stops at its end: the keys handed over add
					// up to about one listing of the prefix, not one per range.
					if v := b.seen.Load() - seen; v > int64(total+4*int(wantLists)) {
						t.Errorf("%d keys listed for %d keys in the bucket", v, total)
					}
				})
			}
		}
	}
}

// The key just after a hashed range's start marker is the last block of
// the previous range; it must be left to that range.
func TestSurveyRangeBoundaries(t *testing.T) {
	b, want := surveyBucket(t, "disk1/", true, 64)
	s := newStore(t, b, Options{Prefix: "disk1/", HashPrefix: true, BlockSize: 512, NumBlocks: 64})
	ctx := context.Background()
	for n := range want {
		h := blockkey.Hash(uint32(n))
		if h == 0 || h == 1<<32-1 {
			continue
		}
		var got []uint64
		collect := func(m uint64) { got = append(got, m) }
		if err := s.listRange(ctx, nameRange{h + 1, 1<<32 - 1}, collect); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(got, n) {
			t.Fatalf("block %d (hash %08x) reported by range starting at %08x", n, h, h+1)
		}
		got = nil
		if err := s.listRange(ctx, nameRange{0, h}, collect); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(got, n) {
			t.Fatalf("block %d (hash %08x) missed by range ending at it", n, h)
		}
	}
}

func TestSurveyMoreThreadsThanBlocks(t *testing.T) {
	b, want := surveyBucket(t, "d/", false, 5)
	s := newStore(t, b, Options{Prefix: "d/", BlockSize: 512, NumBlocks: 5, ListThreads: 16})
	got := survey(t, s)
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Fatalf("survey %v, want %v", got, want)
	}
	if l := b.Counts().Lists; l != 5 {
		t.Fatalf("%d listings for 5 blocks, want 5 (one per non-empty range)", l)
	}
}

func TestSurveyErrors(t *testing.T) {
	b, _ := surveyBucket(t, "d/", false, 100)
	s := newStore(t, b, Options{Prefix: "d/", BlockSize: 512, NumBlocks: 100, ListThreads: 4})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Survey(ctx, func(uint64) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled survey: %v", err)
	}
	b.fail = errors.New("access denied")
	if err := s.Survey(context.Background(), func(uint64) {}); err == nil || !errors.Is(err, b.fail) {
		t.Fatalf("failing listing: %v", err)
	}
}

func TestSplitRanges(t *testing.T) {
	for _, c := range []struct {
		last uint32
		t    int
	}{
		{0, 1}, {0, 16}, {4, 16}, {15, 3}, {5999, 16}, {5999, 1}, {1<<32 - 1, 16}, {1<<32 - 1, 3}, {1<<32 - 1, 1}, {1<<32 - 1, 1000},
	} {
		r := splitRanges(c.last, c.t)
		if want := min(c.t, int(c.last)+1); len(r) != want {
			t.Errorf("splitRanges(%#x, %d): %d ranges, want %d", c.last, c.t, len(r), want)
		}
		next := uint64(0)
		for _, x := range r {
			if uint64(x.lo) != next || x.hi < x.lo {
				t.Fatalf("splitRanges(%#x, %d): %v not contiguous and non-empty", c.last, c.t, r)
			}
			next = uint64(x.hi) + 1
		}
		if next != uint64(c.last)+1 {
			t.Errorf("splitRanges(%#x, %d) ends at %#x", c.last, c.t, next-1)
		}
	}
	// s3backer's observed split for N=16, T=3 starts its listings after
	// 0000000/, 00000005 and 0000000a (§5.3).
	if r := splitRanges(15, 3); r[1].lo != 6 || r[2].lo != 11 {
		t.Errorf("splitRanges(15, 3) = %v, want starts 0, 6, 11", r)
	}
}
