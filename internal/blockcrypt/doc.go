// Package blockcrypt is s3backer's block encryption and authentication,
// byte for byte (s3backer-format-detail.md §3): PBKDF2-HMAC-SHA1 keys salted
// with "bucket/prefix", a per-block IV encrypted from the block number
// (ESSIV-like), AES-CBC with PKCS#7 padding, and an HMAC-SHA1 over the block
// number, the cipher name and the ciphertext.
//
// It knows nothing of objects or headers: the codec layer decides where the
// ciphertext and the MAC go. Everything here is a pure function of the
// password, the salt and the block number, so the known-answer vectors of
// the C s3backer test it directly.
package blockcrypt
