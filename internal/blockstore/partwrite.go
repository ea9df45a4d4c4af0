package blockstore

import "context"

// PartWriter is implemented by stores that can write part of a block for
// less than the whole block costs: a cache hit copies only the bytes
// written into the cached block instead of reading the whole block out and
// writing it back (two block copies for a 4 KiB write). The volume uses it
// for writes that do not cover a whole block; stores without it get a
// read-modify-write of the whole block.
//
// Semantics are those of reading block n, replacing bytes [off,
// off+len(p)) with p and writing the result back with WriteBlock: the
// rest of the block keeps its contents, a block that ends up all zeroes
// is a zero block (not stored), and p may be kept only until the call
// returns. A store that does not hold the block fetches it from below
// first (s3backer's write_block_part). Like WriteBlock, concurrent writes
// to one block are the caller's to order (the volume serialises them);
// a PartWriter need not keep two racing part writes of one block from
// losing one of them.
type PartWriter interface {
	// WritePart stores p as bytes [off, off+len(p)) of block n. A
	// zero-length p changes nothing. Misuse is reported as CheckPart does.
	WritePart(ctx context.Context, n uint64, off int, p []byte) error
}
