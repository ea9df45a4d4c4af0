package blockcrypt

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"fmt"
)

// Iterations is s3backer's PBKDF2 iteration count, for both keys.
const Iterations = 5000

// MaxKeyLength is the largest --keyLength (OpenSSL's EVP_MAX_KEY_LENGTH).
// 64 is what volumes of s3backer 1.3.5 and older need.
const MaxKeyLength = 64

// Salt is the PBKDF2 salt: "bucket/prefix" (prefix verbatim, so usually
// ending in '/'). It binds the keys to where the disk lives: encrypted
// blocks moved to another bucket or prefix no longer decrypt.
func Salt(bucket, prefix string) []byte {
	return []byte(bucket + "/" + prefix)
}

// DeriveKeys returns s3backer's two keys, each keyLen bytes: the data (and
// HMAC) key from the password, and the IV key from the data key salted
// with itself.
func DeriveKeys(password, salt []byte, keyLen int) (key, ivKey []byte, err error) {
	if keyLen <= 0 || keyLen > MaxKeyLength {
		return nil, nil, fmt.Errorf("key length %d: must be 1 to %d", keyLen, MaxKeyLength)
	}
	if key, err = pbkdf2.Key(sha1.New, string(password), salt, Iterations, keyLen); err != nil {
		return nil, nil, fmt.Errorf("derive key: %w", err)
	}
	if ivKey, err = pbkdf2.Key(sha1.New, string(key), key, Iterations, keyLen); err != nil {
		return nil, nil, fmt.Errorf("derive IV key: %w", err)
	}
	return key, ivKey, nil
}
