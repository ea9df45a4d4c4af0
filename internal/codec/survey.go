package codec

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockkey"
)

// nameRange is an inclusive range of the value of the first 8 hex digits
// after the prefix: the block number, or its hash with --blockHashPrefix.
type nameRange struct{ lo, hi uint32 }

// splitRanges cuts [0, last] into at most t contiguous, non-empty ranges,
// the way s3backer does (§5.3: range i ends at floor(last*(i+1)/t)), so
// both programs send the same listings. s3backer gives several threads
// the same one-value range when t exceeds the values, which only repeats
// work, so here t is capped instead.
func splitRanges(last uint32, t int) []nameRange {
	if uint64(t) > uint64(last)+1 {
		t = int(last) + 1
	}
	r := make([]nameRange, t)
	lo := uint64(0)
	for i := range r {
		// floor(last*(i+1)/t) in 128 bits: t may be large.
		ph, pl := bits.Mul64(uint64(last), uint64(i+1))
		hi, _ := bits.Div64(ph, pl, uint64(t))
		hi = max(hi, lo)
		if i == t-1 {
			hi = uint64(last)
		}
		r[i] = nameRange{uint32(lo), uint32(hi)}
		lo = hi + 1
	}
	return r
}

// Survey reports every stored block of this disk (s3backer's --listBlocks):
// the name space is split into ListThreads ranges listed in parallel, each
// from its start until the keys pass its end. Keys that are not block names
// of this disk (the mount flag, other files, other prefixes, upper-case
// hex, blocks past the end) are skipped. fn runs on several goroutines.
func (s *Store) Survey(ctx context.Context, fn func(n uint64)) error {
	last := uint32(s.opt.NumBlocks - 1)
	if s.opt.HashPrefix {
		last = 1<<32 - 1 // hashes spread over the whole 32-bit space
	}
	ranges := splitRanges(last, s.threads)
	var found atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(len(ranges))
	for _, r := range ranges {
		g.Go(func() error {
			return s.listRange(gctx, r, func(n uint64) {
				found.Add(1)
				fn(n)
			})
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("survey of %s: %w", s.names, err)
	}
	s.log.Debug("block survey done", "blocks", found.Load(), "ranges", len(ranges))
	return nil
}

// listRange lists the keys whose first 8 hex digits fall in r.
func (s *Store) listRange(ctx context.Context, r nameRange, fn func(n uint64)) error {
	prefix := s.opt.Prefix
	// Start just before the range's first name: "/" sorts right before
	// "0", so prefix+"0000000/" precedes prefix+"00000000".
	startAfter := prefix + "0000000/"
	if r.lo > 0 {
		startAfter = fmt.Sprintf("%s%08x", prefix, r.lo-1)
	}
	end := fmt.Sprintf("%08x", r.hi)
	err := s.b.List(ctx, prefix, startAfter, func(key string) error {
		rest, ok := strings.CutPrefix(key, prefix)
		if !ok {
			return nil
		}
		// Keys come in order and a prefix of a larger string is never
		// smaller, so once the first 8 characters pass end, all later
		// keys do too.
		if first := rest[:min(8, len(rest))]; first > end {
			return backend.ErrStop
		}
		n, ok := s.names.Parse(key)
		if !ok {
			return nil
		}
		v := uint32(n)
		if s.opt.HashPrefix {
			v = blockkey.Hash(v)
		}
		// Just after startAfter come names of the previous range's last
		// value with a suffix (its hash-prefixed block); not ours.
		if v >= r.lo && v <= r.hi {
			fn(n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %08x-%08x: %w", r.lo, r.hi, err)
	}
	return nil
}
