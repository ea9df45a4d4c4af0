// Package codec is the layer that knows what s3backer puts in a bucket: it
// turns numbered blocks into objects of a backend.Backend and back, in
// exactly the C s3backer's format (FORMAT.md, "Objects" and "Headers on a
// block PUT"), so a bucket can move between the two programs.
//
// What it does: block names (with or without --blockHashPrefix), zero
// blocks as deletions, the block-0 size metadata, ETag checks on read, the
// Content-Encoding chain (plain for now; compression and encryption slot in
// as layers, see encoding.go), the parallel --listBlocks survey and bulk
// zeroing. Size auto-detection (Detect) lives here too because it reads the
// same block-0 headers.
package codec
