package codec

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// ErrUnsupportedEncoding marks a block whose Content-Encoding this program
// cannot undo: an I/O error, never the raw bytes as data.
var ErrUnsupportedEncoding = fmt.Errorf("unsupported content encoding: %w", syscall.EIO)

// layer is one step of s3backer's object encoding, named by one token of the
// Content-Encoding header (deflate, zstd, encrypt-AES-128-CBC). Compression
// and encryption are layers; the plain format is the empty chain.
type layer interface {
	// token is what Content-Encoding says for this layer.
	token() string
	// encode appends the encoding of block's src to dst and may add user
	// metadata (encryption's HMAC).
	encode(block uint64, dst, src []byte, meta *backend.Meta) ([]byte, error)
	// decode appends the decoding of src to dst, checking what meta
	// carries; it fails rather than produce more than limit bytes.
	decode(block uint64, dst, src []byte, meta backend.Meta, limit int) ([]byte, error)
}

// chain is the configured encoding: the layers applied on write, and how a
// token read back is resolved to the layer that undoes it. Reading is driven
// by the object's own Content-Encoding, not by the write configuration, so
// decompression works whatever --compress says (as in s3backer).
type chain struct {
	write   []layer
	resolve func(token string) (layer, error)
	// cipher, if set, is the configured encryption: every block read
	// must carry it (validate).
	cipher string
	// ce is contentEncoding, computed once (newChain) rather than per block.
	ce string
}

// contentEncoding is the header value for the write layers: tokens joined
// by ", ", as s3backer writes it ("deflate, encrypt-AES-128-CBC").
func (c chain) contentEncoding() string {
	if c.ce != "" {
		return c.ce
	}
	t := make([]string, len(c.write))
	for i, l := range c.write {
		t[i] = l.token()
	}
	return strings.Join(t, ", ")
}

// encode applies the write layers in order, alternating between the two
// scratch buffers. With no layers it returns src itself: no copy.
func (c chain) encode(block uint64, src []byte, meta *backend.Meta, scratch [2][]byte) ([]byte, error) {
	out := src
	for i, l := range c.write {
		var err error
		if out, err = l.encode(block, scratch[i%2][:0], out, meta); err != nil {
			return nil, fmt.Errorf("%s: %w", l.token(), err)
		}
	}
	if len(c.write) > 0 {
		meta.ContentEncoding = c.contentEncoding()
	}
	return out, nil
}

// decode undoes tokens from last to first, alternating between the
// scratch buffers, scratch[1] first: scratch[0] may be body's own buffer,
// which the first step has consumed by the time it is overwritten. The
// first layer (undone last) may produce at most limit bytes, the others at
// most a scratch buffer (decryption yields compressed data, which may
// exceed a block). With no tokens it returns body.
func (c chain) decode(block uint64, tokens []string, body []byte, meta backend.Meta, limit int, scratch [2][]byte) ([]byte, error) {
	out := body
	for i := len(tokens) - 1; i >= 0; i-- {
		l, err := c.resolve(tokens[i])
		if err != nil {
			return nil, err
		}
		dst := scratch[(len(tokens)-i)%2][:0]
		lim := cap(dst)
		if i == 0 {
			lim = min(lim, limit)
		}
		if out, err = l.decode(block, dst, out, meta, lim); err != nil {
			// Whatever a layer finds wrong (bad HMAC, broken stream), the
			// block cannot be read: an I/O error.
			if !errors.Is(err, syscall.EIO) {
				err = fmt.Errorf("%w: %w", err, blockstore.ErrCorrupt)
			}
			return nil, fmt.Errorf("%s: %w", tokens[i], err)
		}
	}
	return out, nil
}

// unknownEncoding is the error for a token no layer undoes.
func unknownEncoding(token string) error {
	return fmt.Errorf("unknown content encoding %q: %w", token, ErrUnsupportedEncoding)
}

// parseContentEncoding splits a Content-Encoding value into its tokens the
// way s3backer does: commas and white space both separate, empty tokens
// vanish. "identity" (HTTP's no-op) is dropped too. Tokens keep their case
// for messages; resolvers compare them case-insensitively.
func parseContentEncoding(v string) []string {
	return appendTokens(nil, v)
}

// appendTokens is parseContentEncoding appending to dst, so a read can
// parse into an array on its stack.
func appendTokens(dst []string, v string) []string {
	for v != "" {
		i := 0
		for i < len(v) && !isSeparator(v[i]) {
			i++
		}
		if t := v[:i]; t != "" && !strings.EqualFold(t, "identity") {
			dst = append(dst, t)
		}
		if i < len(v) {
			i++
		}
		v = v[i:]
	}
	return dst
}

func isSeparator(c byte) bool {
	switch c {
	case ',', ' ', '\t', '\v', '\f', '\r', '\n':
		return true
	}
	return false
}

// maxObjectSize is the largest object a block of blockSize bytes can be
// stored as, in any encoding: s3backer's own read limit, zlib's
// compressBound plus one cipher block of padding. Reads are sized for it
// whatever this program writes, since another writer may have compressed.
func maxObjectSize(blockSize int) int {
	return blockSize + blockSize>>12 + blockSize>>14 + blockSize>>25 + 13 + 16
}

// gcmExtra is what AES-256-GCM adds beyond the CBC padding maxObjectSize
// allows for: nonce and tag are 28 bytes, the padding at most 16. Only our
// own GCM disks need it; s3backer never reads them.
func gcmExtra(opt Options) int {
	if strings.EqualFold(opt.Encrypt, aead.Name) {
		return aead.Overhead - 16
	}
	return 0
}
