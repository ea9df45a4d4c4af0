package codec

import (
	"context"
	"errors"
	"fmt"
)

// CheckKey catches a wrong password (or cipher, or --keyLength) at start,
// before anything is served, instead of as EIO on every read: it reads the
// first of blocks that exists (block 0 when none are named) and checks
// that it decodes, HMAC first.
//
// checked is false, with a nil error, when encryption is off or none of
// the blocks exists (a new disk: nothing to check against). A block that
// fails authentication gives "wrong password or cipher for BUCKET/PREFIX:
// block N fails authentication" wrapping ErrAuth; one encrypted otherwise
// than configured, or not at all, wraps ErrEncryptionMismatch. Each
// missing block costs one GET, so name blocks known to exist (a survey's
// first) when block 0 may be zero.
func (s *Store) CheckKey(ctx context.Context, blocks ...uint64) (checked bool, err error) {
	if s.opt.Encrypt == "" {
		return false, nil
	}
	if len(blocks) == 0 {
		blocks = []uint64{0}
	}
	where := s.opt.Bucket + "/" + s.opt.Prefix
	buf := make([]byte, s.opt.BlockSize)
	for _, n := range blocks {
		if n >= s.opt.NumBlocks {
			return false, fmt.Errorf("check the encryption key: block %d is beyond the disk (%d blocks)", n, s.opt.NumBlocks)
		}
		found, err := s.read(ctx, n, buf)
		switch {
		case errors.Is(err, ErrAuth):
			return false, fmt.Errorf("wrong password or cipher for %s: block %d fails authentication: %w", where, n, err)
		case errors.Is(err, ErrEncryptionMismatch):
			return false, fmt.Errorf("encryption of %s does not match --encrypt: %w", where, err)
		case err != nil:
			return false, fmt.Errorf("check the encryption key of %s on block %d: %w", where, n, err)
		case found:
			return true, nil
		}
	}
	return false, nil
}
