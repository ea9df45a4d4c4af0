package blockcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
	"sync"
)

// MACSize is the length of a block's HMAC-SHA1.
const MACSize = sha1.Size

var (
	// ErrAuth: the block's HMAC is not the one its key gives: a wrong
	// password or cipher, a tampered object, or an object moved from
	// another block number, bucket or prefix.
	ErrAuth = errors.New("HMAC does not match")
	// ErrMalformed: the ciphertext cannot have come from Seal (length not a
	// whole number of cipher blocks, bad padding).
	ErrMalformed = errors.New("malformed ciphertext")
)

// keyLengths are the ciphers implemented, by OpenSSL name, with their
// natural key lengths. s3backer takes any OpenSSL CBC cipher; only AES is
// in use, and only canonical names round-trip with it (format detail §14.4).
var keyLengths = map[string]int{"AES-128-CBC": 16, "AES-192-CBC": 24, "AES-256-CBC": 32}

// Canonical returns the OpenSSL name of a cipher given in any case, and
// whether it is implemented.
func Canonical(name string) (string, bool) {
	c := strings.ToUpper(name)
	_, ok := keyLengths[c]
	return c, ok
}

// Cipher encrypts and authenticates blocks under one password and salt.
// It is safe for concurrent use; per-call scratch comes from a pool so a
// block costs no allocation.
type Cipher struct {
	name   string
	nameB  []byte       // name, for the HMAC without a conversion per call
	macKey []byte       // the whole data key: HMAC uses all keyLen bytes
	data   cipher.Block // data key, cut to the cipher's key length
	ivc    cipher.Block // IV key, cut likewise
	ivIV   [aes.BlockSize]byte
	states sync.Pool
}

// state is one call's scratch. The CBC modes are re-aimed with SetIV
// rather than made anew, which would allocate.
type state struct {
	mac hash.Hash
	enc cipher.BlockMode
	dec cipher.BlockMode
	num [aes.BlockSize]byte // "%08x" of the block number, zero padded
	iv  [aes.BlockSize]byte
	sum [MACSize]byte
}

type ivSetter interface{ SetIV([]byte) }

// New derives the keys for cipher name (canonical or any case) from
// password and salt. keyLen is --keyLength: 0 means the cipher's own key
// length; otherwise it must be at least that and at most MaxKeyLength.
func New(name string, password, salt []byte, keyLen int) (*Cipher, error) {
	canon, ok := Canonical(name)
	if !ok {
		return nil, fmt.Errorf("cipher %q is not supported (want AES-128-CBC, AES-192-CBC or AES-256-CBC)", name)
	}
	natural := keyLengths[canon]
	switch {
	case keyLen == 0:
		keyLen = natural
	case keyLen < natural || keyLen > MaxKeyLength:
		return nil, fmt.Errorf("key length %d for %s: must be %d to %d", keyLen, canon, natural, MaxKeyLength)
	}
	key, ivKey, err := DeriveKeys(password, salt, keyLen)
	if err != nil {
		return nil, err
	}
	return newFromKeys(canon, key, ivKey)
}

func newFromKeys(canon string, key, ivKey []byte) (*Cipher, error) {
	natural := keyLengths[canon]
	data, err := aes.NewCipher(key[:natural])
	if err != nil {
		return nil, err
	}
	ivc, err := aes.NewCipher(ivKey[:natural])
	if err != nil {
		return nil, err
	}
	c := &Cipher{name: canon, nameB: []byte(canon), macKey: key, data: data, ivc: ivc}
	copy(c.ivIV[:], ivKey) // the IV key doubles as the IV for the block number
	c.states.New = func() any {
		var zero [aes.BlockSize]byte
		return &state{
			mac: hmac.New(sha1.New, c.macKey),
			enc: cipher.NewCBCEncrypter(c.data, zero[:]),
			dec: cipher.NewCBCDecrypter(c.data, zero[:]),
		}
	}
	return c, nil
}

// Name is the cipher's OpenSSL name, as the HMAC and Content-Encoding say it.
func (c *Cipher) Name() string { return c.name }

func (c *Cipher) get() *state  { return c.states.Get().(*state) }
func (c *Cipher) put(s *state) { c.states.Put(s) }

// checkBlock: s3backer block numbers are 32-bit, and the IV and HMAC hold
// exactly 8 hex digits of them.
func checkBlock(block uint64) error {
	if block > math.MaxUint32 {
		return fmt.Errorf("block %d: block numbers are 32-bit", block)
	}
	return nil
}

// formatBlock writes "%08x" of block into st.num, zero padded to a cipher
// block.
func (st *state) formatBlock(block uint64) {
	const digits = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		st.num[i] = digits[block&0xf]
		block >>= 4
	}
	clear(st.num[8:])
}

// setIV computes the block's IV into st.iv: the padded block number
// CBC-encrypted (one cipher block, no padding) under the IV key with the
// IV key's first bytes as IV, i.e. AES(ivKey, num XOR ivKey[:16]).
func (c *Cipher) setIV(st *state, block uint64) {
	st.formatBlock(block)
	for i := range st.iv {
		st.iv[i] = st.num[i] ^ c.ivIV[i]
	}
	c.ivc.Encrypt(st.iv[:], st.iv[:])
}

// IV is block's initialisation vector.
func (c *Cipher) IV(block uint64) [aes.BlockSize]byte {
	st := c.get()
	defer c.put(st)
	c.setIV(st, block)
	return st.iv
}

// mac computes the HMAC of ciphertext for block into st.sum.
func (c *Cipher) mac(st *state, block uint64, ciphertext []byte) {
	st.formatBlock(block)
	st.mac.Reset()
	st.mac.Write(st.num[:8])
	st.mac.Write(c.nameB)
	st.mac.Write(ciphertext)
	st.mac.Sum(st.sum[:0])
}

// MAC is the HMAC-SHA1 s3backer stores with block's ciphertext.
func (c *Cipher) MAC(block uint64, ciphertext []byte) [MACSize]byte {
	st := c.get()
	defer c.put(st)
	c.mac(st, block, ciphertext)
	return st.sum
}

// Seal appends to dst the encryption of plaintext as block (PKCS#7
// padded, so 1 to 16 bytes longer) and returns it with its HMAC. dst must
// not overlap plaintext.
func (c *Cipher) Seal(dst, plaintext []byte, block uint64) ([]byte, [MACSize]byte, error) {
	if err := checkBlock(block); err != nil {
		return nil, [MACSize]byte{}, err
	}
	st := c.get()
	defer c.put(st)
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	start := len(dst)
	dst = append(dst, plaintext...)
	for range pad {
		dst = append(dst, byte(pad))
	}
	ct := dst[start:]
	c.setIV(st, block)
	setIV(&st.enc, st.iv[:], c.data, cipher.NewCBCEncrypter)
	st.enc.CryptBlocks(ct, ct)
	c.mac(st, block, ct)
	return dst, st.sum, nil
}

// Open checks mac against ciphertext for block and only then decrypts,
// appending the plaintext to dst. A wrong MAC is ErrAuth; a ciphertext
// with a right MAC but no valid padding is ErrMalformed. dst must not
// overlap ciphertext.
func (c *Cipher) Open(dst, ciphertext []byte, block uint64, mac []byte) ([]byte, error) {
	if err := checkBlock(block); err != nil {
		return nil, err
	}
	st := c.get()
	defer c.put(st)
	c.mac(st, block, ciphertext)
	if !hmac.Equal(st.sum[:], mac) { // constant time
		return nil, ErrAuth
	}
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of cipher blocks", ErrMalformed, len(ciphertext))
	}
	start := len(dst)
	dst = append(dst, ciphertext...)
	pt := dst[start:]
	c.setIV(st, block)
	setIV(&st.dec, st.iv[:], c.data, cipher.NewCBCDecrypter)
	st.dec.CryptBlocks(pt, pt)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, fmt.Errorf("%w: bad padding", ErrMalformed)
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrMalformed)
		}
	}
	return dst[:len(dst)-pad], nil
}

// setIV re-aims a pooled CBC mode at iv, or makes a new one where the
// mode cannot be re-aimed (not the case for AES in the standard library).
func setIV(m *cipher.BlockMode, iv []byte, b cipher.Block, mk func(cipher.Block, []byte) cipher.BlockMode) {
	if s, ok := (*m).(ivSetter); ok {
		s.SetIV(iv)
		return
	}
	*m = mk(b, iv)
}
