// Package cachefile keeps s3backer's block cache in a file
// (--blockCacheFile), so that it survives a restart and a crash: a
// cache.Slots whose directory says, slot by slot, which block it holds,
// whether it is dirty and, for a clean block, the block's tag (S3 ETag)
// below.
//
// The format is our own, documented in docs/cachefile.md; a cache file of
// the C s3backer is recognised (cformat.go) and rebuilt, or refused while
// it holds blocks the C s3backer has not written back.
//
// Crash safety rests on checksums rather than on ordering every write
// with fdatasync: each directory entry carries a CRC32C of itself (and
// its slot number) and of the slot's data, plus a file-wide sequence
// number. A write puts the data, then the entry: two pwrites, no sync. If
// the process dies in between, or half-way through the data (a pwrite is
// cut short by SIGKILL between pages), the entry no longer matches the
// data and the block is not recovered. Of several entries naming the same
// block (a slot freed and not reused keeps its old entry) the newest wins,
// and if its data does not match, the block is not recovered at all: an
// older copy never comes back. An old entry of a block is invalidated
// when the block gets a new one elsewhere (before that slot can be
// reused), and when the block changes below behind the cache's back
// (cache.Invalidator). A clean entry is written only after an fdatasync
// (shared by concurrent write-backs), so after a power failure a clean
// entry never outlives the dirty data it replaced.
package cachefile
