package aead

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Labels of the key check (see Check).
const (
	checkKeyLabel = "s3backer-go/AES-256-GCM/key-check/v1"
	checkLabel    = "s3backer-go/key-info/v1"
)

// CheckSize is the length of a key check value.
const CheckSize = sha256.Size

// computeCheck sets c.check: HMAC-SHA256 under a key of its own,
// HKDF-Expand(SHA-256, master, checkKeyLabel, 32), over every parameter of
// the key info (checkData). It tells a wrong password before any block is
// read, and that the key info was not edited (KDF, salt, bucket, prefix):
// all of it must match for the value to.
func (c *Cipher) computeCheck() error {
	k, err := hkdf.Expand(sha256.New, c.master, checkKeyLabel, KeySize)
	if err != nil {
		return fmt.Errorf("derive the key check key: %w", err)
	}
	m := hmac.New(sha256.New, k)
	m.Write(checkData(c.p))
	m.Sum(c.check[:0])
	return nil
}

// checkData encodes p unambiguously: the label, the mode, bucket and
// prefix, the KDF name, its three parameters (uint32 big-endian) and the
// salt, strings and salt length-prefixed.
func checkData(p Params) []byte {
	b := []byte(checkLabel)
	for _, s := range []string{Name, p.Bucket, p.Prefix, KDFName} {
		b = appendLP(b, s)
	}
	for _, v := range []uint32{p.KDF.Time, p.KDF.MemoryKiB, uint32(p.KDF.Threads)} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return appendLP(b, p.Salt)
}

// Check is the key check value to store with the parameters.
func (c *Cipher) Check() []byte { return append([]byte(nil), c.check[:]...) }

// Verify reports whether check is this key's check value (constant time).
func (c *Cipher) Verify(check []byte) bool { return hmac.Equal(c.check[:], check) }
