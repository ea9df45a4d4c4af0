package codec

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockkey"
)

// ErrSizeSuspect: block 0 names a block size but a disk size that cannot be
// right. The error wrapping it says what was read and suggests --size.
var ErrSizeSuspect = errors.New("auto-detected disk size is suspect")

// Detect reads the disk geometry s3backer keeps on block 0 (one HEAD):
// the x-amz-meta-s3backer-blocksize and -filesize headers.
//
// found is false, with a nil error, when block 0 does not exist (a disk
// whose block 0 was never written, or was zeroed, which deletes it and its
// headers) or when either header is missing, zero or not a number.
//
// s3backer 1.5.x (until 1.6.1) computed the file size in 32 bits, so a disk
// of 4 GiB or more written by it carries the size modulo 4 GiB: 0 for a
// multiple of 4 GiB. A zero size, or one that is not a multiple of the block
// size, with a valid block size present, returns found=false and an error
// wrapping ErrSizeSuspect that suggests --size; blockSize and size then hold
// what was read, so the caller may still use the block size. A wrong but
// non-zero size from that bug is a multiple of the block size and cannot be
// told from a real one here.
func Detect(ctx context.Context, b backend.Backend, prefix string, hashPrefix bool) (size, blockSize int64, found bool, err error) {
	key := blockkey.Namer{Prefix: prefix, HashPrefix: hashPrefix, NumBlocks: 1}.Name(0)
	info, err := b.Head(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("size auto-detection: %w", err)
	}
	// s3backer reads the block size as %u (32 bits) and the size as %ju.
	bs, err := strconv.ParseUint(strings.TrimSpace(info.User[metaBlockSize]), 10, 32)
	if err != nil || bs == 0 {
		return 0, 0, false, nil
	}
	blockSize = int64(bs)
	size, err = strconv.ParseInt(strings.TrimSpace(info.User[metaFileSize]), 10, 64)
	if err != nil || size < 0 {
		return 0, blockSize, false, nil
	}
	switch {
	case size == 0:
		return size, blockSize, false, fmt.Errorf("%w: %s says block size %d but disk size 0, which s3backer 1.5.x "+
			"writes for disks of a multiple of 4 GiB (it computed the size in 32 bits); give the real size with --size",
			ErrSizeSuspect, key, blockSize)
	case size%blockSize != 0:
		return size, blockSize, false, fmt.Errorf("%w: %s says disk size %d, not a multiple of its block size %d; "+
			"give the real size with --size", ErrSizeSuspect, key, size, blockSize)
	}
	return size, blockSize, true, nil
}
