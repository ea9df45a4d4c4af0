package codec

import (
	"errors"
	"fmt"
	"strings"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// gcmLayer is our "encrypt-AES-256-GCM" (package aead): the body is the
// nonce, the ciphertext and the tag, and nothing goes in the metadata.
type gcmLayer struct {
	c *aead.Cipher
	// inner is the Content-Encoding this store writes under the
	// encryption ("deflate", "zstd" or ""), bound into every block's AAD.
	inner string
}

func newGCMLayer(c *aead.Cipher, inner string) *gcmLayer {
	return &gcmLayer{c: c, inner: strings.ToLower(inner)}
}

func (l *gcmLayer) token() string { return encryptPrefix + aead.Name }

func (l *gcmLayer) encode(block uint64, dst, src []byte, meta *backend.Meta) ([]byte, error) {
	return l.c.Seal(dst, src, block, l.inner)
}

// decode authenticates against the encoding the object itself names under
// the encryption (meta.ContentEncoding, as Store.decode settles it): an
// edited header changes the AAD and is refused, never misread.
func (l *gcmLayer) decode(block uint64, dst, src []byte, meta backend.Meta, limit int) ([]byte, error) {
	var arr [4]string
	tokens := appendTokens(arr[:0], meta.ContentEncoding)
	inner := ""
	if len(tokens) > 1 { // chain.validate put the encryption last
		inner = strings.ToLower(strings.Join(tokens[:len(tokens)-1], ", "))
	}
	start := len(dst)
	out, err := l.c.Open(dst, src, block, inner)
	switch {
	case errors.Is(err, aead.ErrAuth):
		return nil, fmt.Errorf("%w: the object was altered, or copied from another block, bucket or prefix, "+
			"or its Content-Encoding was changed: %w", err, ErrAuth)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", err, blockstore.ErrCorrupt)
	case len(out)-start > limit:
		return nil, fmt.Errorf("%w (%d bytes)", errOversize, limit)
	}
	return out, nil
}
