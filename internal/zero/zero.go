// Package zero is the known-zero-blocks layer (s3backer's zero cache): a
// blockstore.Store decorator that remembers which blocks are absent from
// the store below, and which are stored, so that
//
//   - a read of a known-zero block is answered with zeroes, without I/O;
//   - a zero write (or bulk zero) of a known-zero block is dropped;
//   - Presence (NBD block status, sparse copies) is answered for free.
//
// A block becomes known zero when a read below returns zeroes or a zero
// write succeeds, known present when a read returns data or a data write
// succeeds, and unknown when a write fails. With Options.Survey
// (--listBlocks) the store below is listed in the background at startup;
// when the listing completes, every block it did not report, and that was
// not touched meanwhile, becomes known zero.
//
// Memory: 2 bits per block in 4 KiB pages allocated when a block in them is
// first learned, and one shared page for regions a survey found empty; see
// stateMap for the exact bound (1 GiB at the 2^32-block maximum, only when
// the whole disk is touched in a pattern that defeats the shared page).
// A survey also holds 1 bit per reported block, in pages, until it ends.
package zero

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Options configure a Store.
type Options struct {
	// Survey lists the blocks stored below at startup (--listBlocks), if
	// the store below is a blockstore.Surveyor.
	Survey bool
	// Logger receives the survey's outcome; nil discards it.
	Logger *slog.Logger
}

// Store is a blockstore.Store, Prober, BulkZeroer, PartReader and
// PartWriter; safe for concurrent use. A Prefetcher below is passed through.
type Store struct {
	lower  blockstore.Store
	log    *slog.Logger
	states *stateMap

	partLower blockstore.PartReader // lower, if it reads parts of blocks
	partWrite blockstore.PartWriter // lower, if it writes parts of blocks
	bufs      blockBufs

	stripes [numStripes]stripe
	survey  survey

	zeroReads     atomic.Uint64
	droppedWrites atomic.Uint64
}

var (
	_ blockstore.Store      = (*Store)(nil)
	_ blockstore.Prober     = (*Store)(nil)
	_ blockstore.Prefetcher = (*Store)(nil)
	_ blockstore.BulkZeroer = (*Store)(nil)
)

// bulkParallel bounds the per-block writes of a bulk zero when the store
// below cannot zero in bulk.
const bulkParallel = 16

// New returns the layer over lower. With opt.Survey it starts the survey
// in the background and serves at once; Close stops it.
func New(lower blockstore.Store, opt Options) *Store {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{lower: lower, log: log, states: newStateMap(lower.NumBlocks())}
	s.partLower, _ = lower.(blockstore.PartReader)
	s.partWrite, _ = lower.(blockstore.PartWriter)
	s.startSurvey(opt.Survey)
	return s
}

func (s *Store) BlockSize() int    { return s.lower.BlockSize() }
func (s *Store) NumBlocks() uint64 { return s.lower.NumBlocks() }

func (s *Store) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return err
	}
	if s.states.get(n) == zero {
		clear(buf)
		s.zeroReads.Add(1)
		return nil
	}
	t := s.beginRead(n)
	if err := s.lower.ReadBlock(ctx, n, buf); err != nil {
		return err
	}
	// The stores below read an absent block as zeroes, and never store
	// a zero block, so zeroes mean absent.
	outcome := present
	if blockstore.IsZero(buf) {
		outcome = zero
	}
	s.endRead(n, t, outcome)
	return nil
}

func (s *Store) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	if err := blockstore.CheckBlock(s, n, data); err != nil {
		return err
	}
	isZero := data == nil || blockstore.IsZero(data)
	if isZero && s.states.get(n) == zero {
		s.droppedWrites.Add(1)
		return nil
	}
	return s.writeDown(ctx, n, data, isZero)
}

func (s *Store) writeDown(ctx context.Context, n uint64, data []byte, isZero bool) error {
	t := s.beginWrite(n)
	err := s.lower.WriteBlock(ctx, n, data)
	switch {
	case err != nil:
		// It may have landed anyway (a lost reply): unknown.
		s.endWrite(n, t, doubt)
	case isZero:
		s.endWrite(n, t, zero)
	default:
		s.endWrite(n, t, present)
	}
	return err
}

// ZeroBlocks makes blocks zero. Known-zero ones are skipped; the rest go
// to the store below in one bulk call if it can, else as zero writes.
func (s *Store) ZeroBlocks(ctx context.Context, blocks []uint64) error {
	for _, n := range blocks {
		if err := blockstore.CheckBlock(s, n, nil); err != nil {
			return fmt.Errorf("zeroing %d blocks: %w", len(blocks), err)
		}
	}
	todo := make([]uint64, 0, len(blocks))
	for _, n := range blocks {
		if s.states.get(n) != zero {
			todo = append(todo, n)
		}
	}
	s.droppedWrites.Add(uint64(len(blocks) - len(todo)))
	if len(todo) == 0 {
		return nil
	}
	if bz, ok := s.lower.(blockstore.BulkZeroer); ok {
		ts := s.beginBulk(todo)
		err := bz.ZeroBlocks(ctx, todo)
		outcome := zero
		if err != nil {
			outcome = doubt // some may be zeroed, we cannot tell which
		}
		s.endBulk(todo, ts, outcome)
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(bulkParallel)
	for _, n := range todo {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := s.writeDown(gctx, n, nil, true); err != nil {
				return fmt.Errorf("zeroing block %d: %w", n, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// Presence answers from the bitmap: known zero is Absent, known present is
// Present; after a completed survey anything else (a block in doubt) is
// Present, the safe answer. Before, the store below is asked if it can
// tell, else Unknown.
func (s *Store) Presence(ctx context.Context, n uint64) (blockstore.Presence, error) {
	if err := blockstore.CheckBlock(s, n, nil); err != nil {
		return blockstore.Unknown, err
	}
	switch s.states.get(n) {
	case zero:
		return blockstore.Absent, nil
	case present:
		return blockstore.Present, nil
	}
	if s.survey.settled.Load() {
		return blockstore.Present, nil
	}
	if p, ok := s.lower.(blockstore.Prober); ok {
		return p.Presence(ctx, n)
	}
	return blockstore.Unknown, nil
}

// Prefetch passes through to a Prefetcher below; otherwise it does nothing.
func (s *Store) Prefetch(ctx context.Context, first, count uint64) error {
	if p, ok := s.lower.(blockstore.Prefetcher); ok {
		return p.Prefetch(ctx, first, count)
	}
	return nil
}

func (s *Store) Flush(ctx context.Context) error { return s.lower.Flush(ctx) }

// Close stops a running survey, waits for it, and closes the store below.
func (s *Store) Close() error {
	s.stopSurvey()
	return s.lower.Close()
}
