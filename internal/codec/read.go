package codec

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/md5sum"
)

// etagAttempts is how many GETs a block whose body fails its ETag gets.
const etagAttempts = 3

// ReadBlock fills buf with block n. A missing object is a zero block. An
// object that is not exactly one block once decoded, fails its ETag or its
// HMAC, or carries an encoding this program cannot undo is an I/O error.
func (s *Store) ReadBlock(ctx context.Context, n uint64, buf []byte) error {
	if err := blockstore.CheckBlock(s, n, buf); err != nil {
		return err
	}
	found, err := s.read(ctx, n, buf)
	if err == nil && !found {
		clear(buf)
	}
	return err
}

// read is ReadBlock telling a missing object (found false, buf untouched)
// from a stored one.
func (s *Store) read(ctx context.Context, n uint64, buf []byte) (found bool, err error) {
	found, _, err = s.readOpt(ctx, n, buf, backend.GetOptions{})
	return found, err
}

// readOpt is read with conditions (tag.go), also returning the object's
// ETag. A condition that holds is an error wrapping backend.ErrNotModified.
//
// On a disk that stores blocks as they are (s.direct) the GET lands in
// buf itself, saving a block copy per read: the cache hands its slot's
// memory down, so the body is copied once, from the socket. An object
// that turns out larger than a block is fetched again into an object
// buffer, and one that turns out encoded is decoded from a copy; either
// way it is not what this disk writes. On error buf may hold anything.
func (s *Store) readOpt(ctx context.Context, n uint64, buf []byte, opt backend.GetOptions) (found bool, etag string, err error) {
	key := s.names.Name(n)
	var a *[]byte // the object buffer, unless reading into buf
	defer func() {
		if a != nil {
			s.bufs.put(a)
		}
	}()
	dst := buf
	if !s.direct {
		a = s.bufs.get()
		dst = *a
	}
	var (
		got  int
		info backend.Info
	)
	// A body that fails its ETag is fetched again a few times before it is
	// called corrupt: a server that is not atomic between an object's data
	// and its ETag (versitygw's posix store under a concurrent overwrite)
	// can pair the two from different versions for one GET.
	var etagErr error // the MD5 is computed once per GET: it dominates read CPU
	for attempt := 1; ; attempt++ {
		// With the ticket, the body's MD5 may be computed together with
		// those of other reads in flight (md5sum).
		var t *md5sum.Ticket
		if s.opt.VerifyETag {
			t = md5sum.Expect()
		}
		got, info, err = s.b.Get(ctx, key, dst, opt)
		if err != nil {
			t.Cancel()
			if errors.Is(err, backend.ErrTooLarge) && a == nil {
				a = s.bufs.get()
				dst = *a
				attempt--
				continue
			}
			break
		}
		if etagErr = s.checkETag(dst[:got], info, t); etagErr == nil || attempt == etagAttempts {
			break
		}
		s.log.Warn("block does not match its ETag; reading it again", "block", n, "key", key, "attempt", attempt)
	}
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return false, "", nil
	case errors.Is(err, backend.ErrTooLarge):
		// Larger than any encoding of a block can be (s3backer refuses
		// these too): not ours, or damaged.
		return true, "", fmt.Errorf("read block %d (%s): object larger than %d bytes, the most a %d-byte block can be stored as (%v): %w",
			n, key, len(dst), len(buf), err, blockstore.ErrCorrupt)
	case err != nil:
		return true, "", fmt.Errorf("read block %d: %w", n, err)
	}
	body := dst[:got]
	if etagErr != nil {
		return true, "", fmt.Errorf("read block %d (%s): %w", n, key, etagErr)
	}
	if err := s.decode(n, body, info.Meta, buf); err != nil {
		// Refusals (wrong password, tampering, damage) are logged here,
		// where block and cause are known: upper layers see only EIO.
		s.log.Error("refusing to read block", "block", n, "key", key, "err", err)
		return true, "", fmt.Errorf("read block %d (%s): %w", n, key, err)
	}
	return true, info.ETag, nil
}

// decode turns the object body of block n into the block in buf, undoing
// its Content-Encoding (or --defaultContentEncoding when it has none). On
// error buf is untouched, unless body is buf. body's array, up to its
// capacity (an object buffer's size), is scratch space; or body is buf
// itself (a direct read), and then a plain block is already in place.
func (s *Store) decode(n uint64, body []byte, meta backend.Meta, buf []byte) error {
	ce := meta.ContentEncoding
	if strings.TrimSpace(ce) == "" {
		ce = s.opt.DefaultContentEncoding
	}
	meta.ContentEncoding = ce // what the layers see (GCM binds it)
	var arr [4]string         // s3backer writes at most two layers
	tokens := appendTokens(arr[:0], ce)
	if err := s.chain.validate(tokens); err != nil {
		return err
	}
	out := body
	if len(tokens) > 0 {
		if len(body) > 0 && &body[0] == &buf[0] {
			// Read into buf, but encoded after all: buf must not be
			// the decoders' scratch space.
			c := s.bufs.get()
			defer s.bufs.put(c)
			body = (*c)[:copy(*c, body)]
		}
		b := s.bufs.get()
		defer s.bufs.put(b)
		var err error
		if out, err = s.chain.decode(n, tokens, body, meta, len(buf), [2][]byte{body[:0:cap(body)], *b}); err != nil {
			return err
		}
	}
	if len(out) != len(buf) {
		what := "object is"
		if len(tokens) > 0 {
			what = fmt.Sprintf("object (%d bytes, %s) decodes to", len(body), strings.Join(tokens, ", "))
		}
		return fmt.Errorf("%s %d bytes, block size is %d: %w", what, len(out), len(buf), blockstore.ErrCorrupt)
	}
	if len(out) > 0 && &out[0] != &buf[0] {
		copy(buf, out)
	}
	return nil
}
