package codec

import (
	"errors"
	"fmt"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockcrypt"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// metaHMAC is the user metadata (x-amz-meta-s3backer-hmac) that carries an
// encrypted block's HMAC: 40 lowercase hex digits in double quotes.
const metaHMAC = "s3backer-hmac"

var (
	// ErrAuth marks a block that fails authentication: its HMAC is missing
	// or not the one the configured password, cipher and --keyLength give.
	ErrAuth = fmt.Errorf("block fails authentication: %w", blockstore.ErrCorrupt)
	// ErrEncryptionMismatch marks a block whose encryption is not the
	// configured one: encrypted without --encrypt, with another cipher,
	// or not encrypted although --encrypt is given.
	ErrEncryptionMismatch = fmt.Errorf("block encryption does not match the configuration: %w", blockstore.ErrCorrupt)
)

// encryptLayer is s3backer's "encrypt-CIPHER": CBC with PKCS#7 padding and
// an HMAC in the object's metadata (blockcrypt has the details).
type encryptLayer struct {
	c   *blockcrypt.Cipher
	tok string
}

func newEncryptLayer(c *blockcrypt.Cipher) *encryptLayer {
	return &encryptLayer{c: c, tok: "encrypt-" + c.Name()}
}

func (l *encryptLayer) token() string { return l.tok }

func (l *encryptLayer) encode(block uint64, dst, src []byte, meta *backend.Meta) ([]byte, error) {
	out, mac, err := l.c.Seal(dst, src, block)
	if err != nil {
		return nil, err
	}
	if meta.User == nil {
		meta.User = make(map[string]string, 1)
	}
	meta.User[metaHMAC] = formatMAC(mac)
	return out, nil
}

func (l *encryptLayer) decode(block uint64, dst, src []byte, meta backend.Meta, limit int) ([]byte, error) {
	v, ok := meta.User[metaHMAC]
	if !ok {
		return nil, fmt.Errorf("no HMAC (x-amz-meta-%s): not written by s3backer with --encrypt, or the server dropped its metadata: %w", metaHMAC, ErrAuth)
	}
	mac, ok := parseMAC(v)
	if !ok {
		return nil, fmt.Errorf("malformed HMAC header %q: %w", v, ErrAuth)
	}
	start := len(dst)
	out, err := l.c.Open(dst, src, block, mac[:])
	switch {
	case errors.Is(err, blockcrypt.ErrAuth):
		return nil, fmt.Errorf("HMAC does not match: wrong password, cipher or --keyLength, or an object altered or copied from another block, bucket or prefix: %w", ErrAuth)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", err, blockstore.ErrCorrupt)
	case len(out)-start > limit:
		return nil, fmt.Errorf("%w (%d bytes)", errOversize, limit)
	}
	return out, nil
}

// formatMAC is the header value: the hex digest in double quotes.
func formatMAC(mac [blockcrypt.MACSize]byte) string {
	const digits = "0123456789abcdef"
	var b [2*blockcrypt.MACSize + 2]byte
	b[0], b[len(b)-1] = '"', '"'
	for i, c := range mac {
		b[1+2*i], b[2+2*i] = digits[c>>4], digits[c&0xf]
	}
	return string(b[:])
}

// parseMAC reads the header value: 40 hex digits (either case), in double
// quotes as s3backer writes them, or bare should a server strip them.
func parseMAC(v string) (mac [blockcrypt.MACSize]byte, ok bool) {
	if len(v) == 2*blockcrypt.MACSize+2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if len(v) != 2*blockcrypt.MACSize {
		return mac, false
	}
	for i := range mac {
		hi, ok1 := unhex(v[2*i])
		lo, ok2 := unhex(v[2*i+1])
		if !ok1 || !ok2 {
			return mac, false
		}
		mac[i] = hi<<4 | lo
	}
	return mac, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
