package blockstore

import "context"

// Tagger is implemented by stores that can name the version of a stored
// block — the codec: the ETag of the block's S3 object. A persistent cache
// (--blockCacheFile) records the tag of each clean block it keeps, and
// after a restart asks whether the block still has that tag before
// trusting its copy (s3backer's conditional GET with If-None-Match).
//
// The tag "" means the block is not stored (it reads as zeroes), or that
// the store gave no tag for it.
type Tagger interface {
	// ReadBlockTag is ReadBlock that also returns the block's tag.
	ReadBlockTag(ctx context.Context, n uint64, buf []byte) (tag string, err error)
	// WriteBlockTag is WriteBlock that also returns the block's new tag
	// ("" for a zero block: it is deleted, not stored).
	WriteBlockTag(ctx context.Context, n uint64, data []byte) (tag string, err error)
	// ReadBlockIfChanged reads block n into buf unless its tag is still
	// tag. changed false: the block is unchanged and buf untouched (S3:
	// 304 Not Modified). changed true: buf holds the block now stored (all
	// zeroes if it is not stored any more) and newTag its tag. tag ""
	// expects the block not to be stored.
	ReadBlockIfChanged(ctx context.Context, n uint64, tag string, buf []byte) (changed bool, newTag string, err error)
}
