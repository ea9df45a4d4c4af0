package codec

import (
	"context"
	"fmt"
	"strconv"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Object metadata s3backer reads and writes (user metadata names are the
// part after x-amz-meta-, lower case).
const (
	blockContentType = "application/x-s3backer-block"
	metaBlockSize    = "s3backer-blocksize"
	metaFileSize     = "s3backer-filesize"
)

// WriteBlock stores block n. An all-zero block is deleted, never stored,
// as s3backer does: the bucket holds only non-zero blocks. Block 0 carries
// the disk geometry for auto-detection (Detect).
func (s *Store) WriteBlock(ctx context.Context, n uint64, data []byte) error {
	_, err := s.WriteBlockTag(ctx, n, data)
	return err
}

// WriteBlockTag is WriteBlock returning the object's new ETag ("" for a
// zero block, which is deleted): blockstore.Tagger.
func (s *Store) WriteBlockTag(ctx context.Context, n uint64, data []byte) (string, error) {
	if err := blockstore.CheckBlock(s, n, data); err != nil {
		return "", err
	}
	key := s.names.Name(n)
	if data == nil || blockstore.IsZero(data) {
		if err := s.b.Delete(ctx, key); err != nil {
			return "", fmt.Errorf("zero block %d: %w", n, err)
		}
		return "", nil
	}
	if err := s.storeNewKey(ctx); err != nil {
		return "", fmt.Errorf("write block %d: %w", n, err)
	}
	meta := backend.Meta{ContentType: blockContentType}
	if n == 0 {
		meta.User = map[string]string{
			metaBlockSize: strconv.Itoa(s.opt.BlockSize),
			metaFileSize:  strconv.FormatUint(uint64(s.opt.BlockSize)*s.opt.NumBlocks, 10),
		}
	}
	var scratch [2][]byte
	if len(s.chain.write) > 0 {
		a, b := s.bufs.get(), s.bufs.get()
		defer s.bufs.put(a)
		defer s.bufs.put(b)
		scratch = [2][]byte{*a, *b}
	}
	body, err := s.chain.encode(n, data, &meta, scratch)
	if err != nil {
		return "", fmt.Errorf("write block %d: encode: %w", n, err)
	}
	if len(body) > s.bufs.size {
		// Cannot happen with zlib's and zstd's worst cases; s3backer (and
		// this program) would refuse to read it back.
		return "", fmt.Errorf("write block %d: encoded to %d bytes, more than the %d readers accept", n, len(body), s.bufs.size)
	}
	etag, err := s.b.Put(ctx, key, body, meta)
	if err != nil {
		return "", fmt.Errorf("write block %d: %w", n, err)
	}
	return etag, nil
}
