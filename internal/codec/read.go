package codec

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// etagAttempts is how many GETs a block whose body fails its ETag gets.
const etagAttempts = 3

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
	var (
		got  int
		info backend.Info
		err  error
	)
	// A body that fails its ETag is fetched again a few times before it is
	// called corrupt: a server that is not atomic between an object's data
	// and its ETag (versitygw's posix store under a concurrent overwrite)
	// can pair the two from different versions for one GET.
	for attempt := 1; ; attempt++ {
		got, info, err = s.b.Get(ctx, key, *a, backend.GetOptions{})
		if err != nil || attempt == etagAttempts || s.checkETag((*a)[:got], info.ETag) == nil {
			break
		}
		s.log.Warn("block does not match its ETag; reading it again", "block", n, "key", key, "attempt", attempt)
	}
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
