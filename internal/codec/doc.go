// Package codec is the layer that knows what s3backer puts in a bucket: it
// turns numbered blocks into objects of a backend.Backend and back, in
// exactly the C s3backer's format (FORMAT.md, "Objects" and "Headers on a
// block PUT"), so a bucket can move between the two programs.
//
// What it does: block names (with or without --blockHashPrefix), zero
// blocks as deletions, the block-0 size metadata, ETag checks on read, the
// Content-Encoding chain of layers (encoding.go): compression (deflate.go,
// zstd.go) then encryption with its HMAC (encrypt.go, over package
// blockcrypt), undone on read from whatever each object says (layers.go),
// the parallel --listBlocks survey and bulk zeroing. Size auto-detection
// (Detect) lives here too because it reads the same block-0 headers, and
// CheckKey, which tells a wrong password at start.
//
// Beyond s3backer: --encrypt=AES-256-GCM (gcm.go, over package aead), whose
// salt and KDF live in a per-disk key info object (keyinfo.go). Open reads
// that object, so every mode refuses a disk of another mode at start;
// New, which makes no request, cannot open a GCM disk.
package codec
