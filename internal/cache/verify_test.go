package cache

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// taggedLower is a lower whose tags are the MD5 of the block (like S3's
// ETag of an unencoded object), counting conditional reads.
type taggedLower struct {
	*lower
	conds, unchanged atomic.Int64
}

func tagOf(data []byte) string {
	if data == nil || blockstore.IsZero(data) {
		return ""
	}
	h := md5.Sum(data)
	return hex.EncodeToString(h[:])
}

func (t *taggedLower) ReadBlockTag(ctx context.Context, n uint64, buf []byte) (string, error) {
	if err := t.ReadBlock(ctx, n, buf); err != nil {
		return "", err
	}
	return tagOf(buf), nil
}

func (t *taggedLower) WriteBlockTag(ctx context.Context, n uint64, data []byte) (string, error) {
	return tagOf(data), t.WriteBlock(ctx, n, data)
}

func (t *taggedLower) ReadBlockIfChanged(ctx context.Context, n uint64, tag string, buf []byte) (bool, string, error) {
	t.conds.Add(1)
	cur := t.stored(n)
	if tagOf(cur) == tag {
		t.unchanged.Add(1)
		return false, tag, nil
	}
	copy(buf, cur)
	return true, tagOf(cur), nil
}

// Recovered clean blocks are checked below on first use: unchanged ones
// are served from the slot (Verified), changed ones replaced (Mismatch);
// without a tag (a store below without tags) by reading and comparing.
func TestRecoveredVerify(t *testing.T) {
	for _, tagged := range []bool{false, true} {
		name := map[bool]string{false: "compare", true: "tagged"}[tagged]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLower(bs, 64)
				var below blockstore.Store = l
				tl := &taggedLower{lower: l}
				if tagged {
					below = tl
				}
				mustWrite(t, l.mem, 9, pattern(bs, 9))   // as cached
				mustWrite(t, l.mem, 10, pattern(bs, 99)) // changed behind the cache's back
				mustWrite(t, l.mem, 12, pattern(bs, 12)) // cached as zero, now data
				slots := &recSlots{Slots: NewMemSlots(bs, 8)}
				_ = slots.Write(0, 9, pattern(bs, 9))
				_ = slots.Write(1, 10, pattern(bs, 10))
				_ = slots.Write(2, 11, nil)
				_ = slots.Write(3, 12, nil)
				slots.rec = []Recovered{
					{Slot: 0, Block: 9, Tag: tagOf(pattern(bs, 9))},
					{Slot: 1, Block: 10, Tag: tagOf(pattern(bs, 10))},
					{Slot: 2, Block: 11, Zero: true},
					{Slot: 3, Block: 12, Zero: true},
				}
				c := newCache(t, below, Options{Slots: slots, WriteDelay: time.Hour})
				want := map[uint64][]byte{9: pattern(bs, 9), 10: pattern(bs, 99), 11: make([]byte, bs), 12: pattern(bs, 12)}
				for round := range 2 {
					for n := uint64(9); n <= 12; n++ {
						if got := mustRead(t, c, n); !bytes.Equal(got, want[n]) {
							t.Fatalf("round %d: block %d: wrong data", round, n)
						}
					}
				}
				st := c.Stats()
				if st.Verified != 2 || st.Mismatch != 2 {
					t.Fatalf("verified %d, mismatch %d; want 2, 2", st.Verified, st.Mismatch)
				}
				if tagged {
					if l.reads.Load() != 0 || tl.conds.Load() != 4 || tl.unchanged.Load() != 2 {
						t.Fatalf("tagged: %d plain reads, %d conditional (%d unchanged)", l.reads.Load(), tl.conds.Load(), tl.unchanged.Load())
					}
				} else if l.reads.Load() != 4 {
					t.Fatalf("%d reads below, want one per recovered block", l.reads.Load())
				}
			})
		})
	}
}

// Concurrent first readers of a recovered block share one check; a write
// makes the check moot; NoVerify trusts the slot.
func TestRecoveredVerifyShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLower(bs, 64)
		mustWrite(t, l.mem, 9, pattern(bs, 9))
		gate := newGate(9)
		l.readHook = func(ctx context.Context, n uint64, do func() error) error { gate.pass(n); return do() }
		slots := &recSlots{Slots: NewMemSlots(bs, 8)}
		_ = slots.Write(0, 9, pattern(bs, 9))
		_ = slots.Write(1, 10, pattern(bs, 10))
		slots.rec = []Recovered{{Slot: 0, Block: 9}, {Slot: 1, Block: 10}}
		c := newCache(t, l, Options{Slots: slots, WriteDelay: time.Hour})
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if !bytes.Equal(mustRead(t, c, 9), pattern(bs, 9)) {
					t.Error("wrong data")
				}
			})
		}
		synctest.Wait()
		gate.release(9)
		wg.Wait()
		if l.readsOf[9] != 1 || c.Stats().Verified != 1 {
			t.Fatalf("%d reads below for 3 readers, verified %d", l.readsOf[9], c.Stats().Verified)
		}
		mustWrite(t, c, 10, pattern(bs, 11))
		if !bytes.Equal(mustRead(t, c, 10), pattern(bs, 11)) || l.readsOf[10] != 0 {
			t.Fatal("a written block was checked below")
		}

		trust := &recSlots{Slots: NewMemSlots(bs, 8), rec: []Recovered{{Slot: 0, Block: 20}}}
		_ = trust.Write(0, 20, pattern(bs, 20))
		c2 := newCache(t, newLower(bs, 64), Options{Slots: trust, NoVerify: true})
		if !bytes.Equal(mustRead(t, c2, 20), pattern(bs, 20)) || c2.Stats().Verified != 0 {
			t.Fatal("NoVerify: slot not trusted")
		}
	})
}
