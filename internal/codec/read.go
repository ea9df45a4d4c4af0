package codec

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// ReadBlock fills buf with block n. A missing object is a zero block. An
// object that is not exactly one block once decoded, fails its ETag, or
// carries an encoding this program cannot undo is an I/O error.
func (s *Store) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return err
	}
	key := s.names.Name(n)
	a := s.bufs.get()
	defer s.bufs.put(a)
	got, info, err := s.b.Get(ctx, key, *a, backend.GetOptions{})
	switch {
	case errors.Is(err, backend.ErrNotFound):
		clear(buf)
		return nil
	case errors.Is(err, backend.ErrTooLarge):
		// Larger than any encoding of a block can be (s3backer refuses
		// these too): not ours, or damaged.
		return fmt.Errorf("read block %d (%s): object larger than %d bytes, the most a %d-byte block can be stored as (%v): %w",
			n, key, len(*a), len(buf), err, blockstore.ErrCorrupt)
	case err != nil:
		return fmt.Errorf("read block %d: %w", n, err)
	}
	body := (*a)[:got]
	if err := s.checkETag(body, info.ETag); err != nil {
		return fmt.Errorf("read block %d (%s): %w", n, key, err)
	}

	ce := info.ContentEncoding
	if strings.TrimSpace(ce) == "" {
		ce = s.opt.DefaultContentEncoding
	}
	tokens := parseContentEncoding(ce)
	out := body
	if len(tokens) > 0 {
		b := s.bufs.get()
		defer s.bufs.put(b)
		if out, err = s.chain.decode(n, tokens, body, info.Meta, len(buf), [2][]byte{*a, *b}); err != nil {
			return fmt.Errorf("read block %d (%s): %w", n, key, err)
		}
	}
	if len(out) != len(buf) {
		what := "object is"
		if len(tokens) > 0 {
			what = fmt.Sprintf("object (%d bytes, %s) decodes to", len(body), strings.Join(tokens, ", "))
		}
		return fmt.Errorf("read block %d (%s): %s %d bytes, block size is %d: %w",
			n, key, what, len(out), len(buf), blockstore.ErrCorrupt)
	}
	copy(buf, out)
	return nil
}
