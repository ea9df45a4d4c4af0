// Package blockstore defines the one interface every layer and backend of
// s3backer-go speaks: a fixed array of numbered, fixed-size blocks.
//
// Layers (cache, zero bitmap, codec, ...) wrap a Store and are Stores
// themselves, so a feature that is off is simply a layer that is not stacked.
package blockstore

import "context"

// Store is a fixed-size array of blocks, numbered 0 .. NumBlocks()-1.
//
// A block that was never written, or was last written with all zeroes, reads
// as zeroes: zero blocks are never stored (s3backer's format deletes them).
// Implementations are safe for concurrent use; concurrent calls on the same
// block are each atomic (a read sees a whole old or a whole new block), but
// their order is the caller's business (the volume serialises writers).
type Store interface {
	// BlockSize is the size of every block in bytes (a power of two).
	BlockSize() int
	// NumBlocks is the number of blocks; block numbers fit in 32 bits.
	NumBlocks() uint64
	// ReadBlock fills buf (len(buf) == BlockSize()) with block n.
	ReadBlock(ctx context.Context, n uint64, buf []byte) error
	// WriteBlock stores data (len == BlockSize()) as block n. A nil data, or
	// data that is all zeroes, makes the block a zero block (not stored).
	// The store may keep data only until the call returns.
	WriteBlock(ctx context.Context, n uint64, data []byte) error
	// Flush returns once every write acknowledged before it was called is
	// durable in the backing store.
	Flush(ctx context.Context) error
	// Close flushes and releases resources. The Store is unusable after.
	Close() error
}

// Presence says what a store knows about whether a block is stored.
type Presence int

const (
	// Unknown: the store cannot tell cheaply; the block may hold data.
	Unknown Presence = iota
	// Absent: the block is not stored and reads as zeroes.
	Absent
	// Present: the block is stored (it may still happen to read as zeroes
	// in a layer above that has not written it back yet).
	Present
)

// Prober is implemented by stores that can tell, without reading the data,
// whether a block is stored. NBD block status and sparse copies use it.
type Prober interface {
	Presence(ctx context.Context, n uint64) (Presence, error)
}

// Prefetcher is implemented by stores that can fetch blocks ahead of need
// (a cache). Stores without it treat a prefetch as a no-op.
type Prefetcher interface {
	Prefetch(ctx context.Context, first, count uint64) error
}

// Surveyor is implemented by stores that can list which blocks are stored
// (s3backer's --listBlocks survey).
type Surveyor interface {
	// Survey calls fn for every stored block, possibly more than once for
	// one block and from several goroutines at once, and returns when the
	// survey is complete.
	Survey(ctx context.Context, fn func(n uint64)) error
}

// BulkZeroer is implemented by stores that can zero many blocks in fewer
// requests than one per block (S3 DeleteObjects). Stores without it get a
// WriteBlock(nil) per block.
type BulkZeroer interface {
	ZeroBlocks(ctx context.Context, blocks []uint64) error
}
