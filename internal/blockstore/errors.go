package blockstore

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Errors carry a syscall.Errno where one fits, so every front end (NBD error
// codes, FUSE errno) can map them the same way with errors.As.
var (
	// ErrReadOnly is returned by writes to a read-only store or volume.
	ErrReadOnly = fmt.Errorf("read-only: %w", syscall.EROFS)
	// ErrCorrupt marks stored data that failed a check (short file, bad
	// checksum or HMAC): an I/O error, never data.
	ErrCorrupt = fmt.Errorf("corrupt block: %w", syscall.EIO)
)

// CheckBlock validates a block number and buffer length against s, so every
// implementation reports misuse the same way.
func CheckBlock(s Store, n uint64, buf []byte) error {
	if n >= s.NumBlocks() {
		return fmt.Errorf("block %d out of range (%d blocks): %w", n, s.NumBlocks(), syscall.EINVAL)
	}
	if buf != nil && len(buf) != s.BlockSize() {
		return fmt.Errorf("block %d: buffer of %d bytes, block size is %d: %w", n, len(buf), s.BlockSize(), syscall.EINVAL)
	}
	return nil
}

// IsZero reports whether b is all zero bytes.
func IsZero(b []byte) bool {
	// Compare in 32-byte strides of 8-byte words: this runs on every
	// written block.
	for len(b) >= 32 {
		if binary.NativeEndian.Uint64(b)|binary.NativeEndian.Uint64(b[8:])|
			binary.NativeEndian.Uint64(b[16:])|binary.NativeEndian.Uint64(b[24:]) != 0 {
			return false
		}
		b = b[32:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
