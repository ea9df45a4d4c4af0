package aead

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// Name is the --encrypt value and, after "encrypt-", the Content-Encoding
// token of this scheme.
const Name = "AES-256-GCM"

// Overhead is what sealing adds to a block: the 12-byte random nonce in
// front and the 16-byte tag behind.
const Overhead = 12 + 16

// ErrAuth: a sealed block does not authenticate: altered, truncated, sealed
// for another block number, disk or compression, or under another key.
var ErrAuth = errors.New("AES-256-GCM authentication failed")

// Labels keep every use of the master key and of the AAD apart; "v1" is
// the format version, so a future change cannot be confused with this one.
const (
	blockKeyLabel = "s3backer-go/AES-256-GCM/block-key/v1"
	blockAADLabel = "s3backer-go/AES-256-GCM/block/v1"
)

// Params is what a disk's keys depend on besides the password: where the
// disk lives (bound into every block and the key check) and its salt and
// KDF parameters (from the key info object).
type Params struct {
	Bucket, Prefix string
	Salt           []byte
	KDF            KDF
}

// Cipher seals and opens the blocks of one disk. It is safe for concurrent
// use; per-call scratch comes from a pool.
type Cipher struct {
	p       Params
	master  []byte
	check   [sha256.Size]byte
	aadHead []byte // label, bucket and prefix: the AAD's constant part
	states  sync.Pool
}

// state is one call's scratch.
type state struct {
	mac hash.Hash // HMAC-SHA256 keyed with the master key: HKDF-Expand
	key [sha256.Size]byte
	aad []byte
}

var blockKeyLabelB = []byte(blockKeyLabel)

// Derive runs the KDF (Argon2id, deliberately slow) over password with p's
// salt and parameters and returns the disk's Cipher.
func Derive(password []byte, p Params) (*Cipher, error) {
	if p.Bucket == "" {
		return nil, errors.New("no bucket name: it is bound into every block")
	}
	master, err := masterKey(password, p.Salt, p.KDF)
	if err != nil {
		return nil, err
	}
	c := &Cipher{p: p, master: master}
	c.p.Salt = append([]byte(nil), p.Salt...)
	c.aadHead = appendLP(append([]byte(nil), blockAADLabel...), p.Bucket)
	c.aadHead = appendLP(c.aadHead, p.Prefix)
	c.states.New = func() any {
		return &state{mac: hmac.New(sha256.New, c.master), aad: make([]byte, 0, len(c.aadHead)+32)}
	}
	if err := c.computeCheck(); err != nil {
		return nil, err
	}
	return c, nil
}

// Params are the parameters the Cipher was derived with.
func (c *Cipher) Params() Params { return c.p }

func (c *Cipher) get() *state  { return c.states.Get().(*state) }
func (c *Cipher) put(s *state) { c.states.Put(s) }

// aead returns block's AEAD: AES-256-GCM under the block's own key,
// HKDF-Expand(SHA-256, master, blockKeyLabel || uint64be(block), 32), that
// is HMAC-SHA256(master, blockKeyLabel || uint64be(block) || 0x01).
// Nonces are random, and GCM allows 2^32 random nonces per key: one key a
// block makes that a bound on rewrites of one block, not of the disk.
func (c *Cipher) aead(st *state, block uint64) (cipher.AEAD, error) {
	var num [9]byte
	binary.BigEndian.PutUint64(num[:8], block)
	num[8] = 1 // HKDF's counter byte for the first (only) output block
	st.mac.Reset()
	st.mac.Write(blockKeyLabelB)
	st.mac.Write(num[:])
	st.mac.Sum(st.key[:0])
	b, err := aes.NewCipher(st.key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(b)
}

// aad is the associated data of block: the label, bucket and prefix
// (length-prefixed), the block number (uint64 big-endian) and the
// Content-Encoding under the encryption (length-prefixed, lower case:
// "deflate", "zstd" or "").
func (c *Cipher) aad(st *state, block uint64, inner string) []byte {
	st.aad = append(st.aad[:0], c.aadHead...)
	st.aad = binary.BigEndian.AppendUint64(st.aad, block)
	return appendLP(st.aad, inner)
}

// Seal appends to dst the sealed form of plaintext as block: a random
// nonce, the ciphertext and the tag (Overhead bytes more). inner is the
// encoding plaintext is in (the compression, "" for none), bound so that
// a Content-Encoding edited in transit is refused, not misread.
func (c *Cipher) Seal(dst, plaintext []byte, block uint64, inner string) ([]byte, error) {
	st := c.get()
	defer c.put(st)
	g, err := c.aead(st, block)
	if err != nil {
		return nil, err
	}
	return g.Seal(dst, nil, plaintext, c.aad(st, block, inner)), nil
}

// Open authenticates sealed as block with encoding inner and appends the
// plaintext to dst. Any failure is ErrAuth. dst must not overlap sealed.
func (c *Cipher) Open(dst, sealed []byte, block uint64, inner string) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than nonce and tag", ErrAuth, len(sealed))
	}
	st := c.get()
	defer c.put(st)
	g, err := c.aead(st, block)
	if err != nil {
		return nil, err
	}
	out, err := g.Open(dst, nil, sealed, c.aad(st, block, inner))
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// appendLP appends s with its length as a uint32 big-endian in front, so
// that no two different field lists encode alike.
func appendLP[S ~string | ~[]byte](b []byte, s S) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
