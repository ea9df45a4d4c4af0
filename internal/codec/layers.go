package codec

import (
	"errors"
	"fmt"
	"strings"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/blockcrypt"
)

// Compression levels s3backer accepts (zlib; ZSTD_minCLevel..maxCLevel).
const (
	minDeflateLevel, maxDeflateLevel = -1, 9
	minZstdLevel, maxZstdLevel       = -(1 << 17), 22
)

// encryptPrefix starts the Content-Encoding token of an encrypted block.
const encryptPrefix = "encrypt-"

// newChain builds the encoding opt asks for: compression, then encryption
// (s3backer's AES-CBC, or our AES-256-GCM), on write; on read, whatever an
// object says, as long as it is something s3backer writes (compression
// first, encryption last) and, with encryption configured, is encrypted
// with the configured cipher.
func newChain(opt Options) (chain, error) {
	var c chain
	comp, level := opt.Compress, opt.CompressLevel
	if comp == "" && opt.Encrypt != "" && !strings.EqualFold(opt.Encrypt, aead.Name) {
		comp, level = "deflate", -1 // s3backer's encryption always compresses
	}
	switch comp {
	case "":
	case "deflate":
		if level < minDeflateLevel || level > maxDeflateLevel {
			return c, fmt.Errorf("deflate level %d: must be %d to %d", level, minDeflateLevel, maxDeflateLevel)
		}
		c.write = append(c.write, newDeflateLayer(level))
	case "zstd":
		if level < minZstdLevel || level > maxZstdLevel {
			return c, fmt.Errorf("zstd level %d: must be %d to %d", level, minZstdLevel, maxZstdLevel)
		}
		c.write = append(c.write, newZstdLayer(level))
	default:
		return c, fmt.Errorf("unknown compression %q (want deflate or zstd)", comp)
	}

	var (
		enc     layer  // the encryption layer, nil without --encrypt
		encName string // its cipher, as after "encrypt-"
	)
	switch {
	case opt.Encrypt == "":
	case strings.EqualFold(opt.Encrypt, aead.Name):
		if opt.gcm == nil {
			return c, fmt.Errorf("%s needs the disk's key info: open the store with codec.Open", aead.Name)
		}
		// The AAD binds the compression under the encryption: the write
		// chain so far.
		enc, encName = newGCMLayer(opt.gcm, c.contentEncoding()), aead.Name
	default:
		switch {
		case opt.Bucket == "":
			return c, errors.New("encryption needs the bucket name: it salts the key")
		case opt.BlockSize%16 != 0:
			return c, fmt.Errorf("block size %d: must be a multiple of 16 to encrypt", opt.BlockSize)
		}
		ci, err := blockcrypt.New(opt.Encrypt, opt.Password, blockcrypt.Salt(opt.Bucket, opt.Prefix), opt.KeyLength)
		if err != nil {
			return c, err
		}
		enc, encName = newEncryptLayer(ci), ci.Name()
	}
	if enc != nil {
		c.write = append(c.write, enc)
		c.cipher = encName
	}

	c.ce = c.contentEncoding()

	// Decompression does not depend on the level.
	inflate, unzstd := newDeflateLayer(-1), newZstdLayer(0)
	c.resolve = func(tok string) (layer, error) {
		switch {
		case strings.EqualFold(tok, "deflate"):
			return inflate, nil
		case strings.EqualFold(tok, "zstd"):
			return unzstd, nil
		case isEncryption(tok) && enc == nil:
			return nil, fmt.Errorf("block is encrypted (%s) but --encrypt was not given: %w", tok, ErrEncryptionMismatch)
		case isEncryption(tok) && !strings.EqualFold(tok[len(encryptPrefix):], encName):
			return nil, fmt.Errorf("block is encrypted with %s but %s is configured (--encrypt=%s?): %w",
				tok[len(encryptPrefix):], encName, strings.ToUpper(tok[len(encryptPrefix):]), ErrEncryptionMismatch)
		case isEncryption(tok):
			return enc, nil
		}
		return nil, unknownEncoding(tok)
	}
	return c, nil
}

// validate vets a Content-Encoding's tokens as a whole before anything is
// decoded: s3backer compresses first and encrypts last, once each, and
// with encryption configured every block must be encrypted. (A method, not
// a closure, so the tokens can stay on the reader's stack.)
func (c chain) validate(tokens []string) error {
	encrypted := false
	for i, t := range tokens {
		switch {
		case isEncryption(t) && i != len(tokens)-1:
			return fmt.Errorf("content encoding %q: encryption is not the last layer: %w", strings.Join(tokens, ", "), ErrUnsupportedEncoding)
		case isEncryption(t):
			encrypted = true
		case isCompression(t) && i != 0:
			return fmt.Errorf("content encoding %q: compression is not the first layer: %w", strings.Join(tokens, ", "), ErrUnsupportedEncoding)
		}
	}
	if c.cipher != "" && !encrypted {
		return fmt.Errorf("block is not encrypted (Content-Encoding %q) but --encrypt=%s is given: %w",
			strings.Join(tokens, ", "), c.cipher, ErrEncryptionMismatch)
	}
	return nil
}

func isEncryption(tok string) bool {
	return len(tok) >= len(encryptPrefix) && strings.EqualFold(tok[:len(encryptPrefix)], encryptPrefix)
}

func isCompression(tok string) bool {
	return strings.EqualFold(tok, "deflate") || strings.EqualFold(tok, "zstd")
}
