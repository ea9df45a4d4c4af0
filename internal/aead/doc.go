// Package aead is s3backer-go's own block encryption, AES-256-GCM, offered
// with --encrypt=AES-256-GCM as an extension the C s3backer cannot read
// (docs/encryption.md). Unlike s3backer's AES-CBC + HMAC (package
// blockcrypt) it authenticates everything that decides what a block reads
// as: the disk (bucket and prefix), the block number and the compression
// under the encryption, so an object can be neither altered, swapped with
// another block's nor moved to another disk.
//
// Keys: Argon2id turns the password and a random per-disk salt into a
// master key (kdf.go); HKDF-SHA256 expands it into one AES-256 key per
// block number (cipher.go), so the 2^32-messages limit of random 96-bit
// nonces applies to each block's writes, not to the whole disk's; and into
// a key check value that tells a wrong password at start (check.go).
//
// It knows nothing of objects or headers: package codec stores the sealed
// bytes as the object body and the salt and KDF parameters in the disk's
// key info object.
package aead
