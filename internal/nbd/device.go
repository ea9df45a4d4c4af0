package nbd

import "context"

// Device is what the server exports: a byte-addressed disk. The volume
// package implements it over a block store; tests may use any implementation.
//
// Errors may wrap a syscall.Errno (EPERM, EROFS, EINVAL, ENOSPC, ENOTSUP,
// EOVERFLOW, ENOMEM, EIO, ...); the server maps it to the NBD error code of
// the same meaning, and anything else to NBD_EIO.
type Device interface {
	// Size in bytes.
	Size() int64
	// BlockSize is the preferred I/O size (NBD_INFO_BLOCK_SIZE preferred).
	BlockSize() int
	// ReadOnly devices get NBD_FLAG_READ_ONLY and the server answers every
	// write-type command with NBD_EPERM without calling the device.
	ReadOnly() bool

	ReadAt(ctx context.Context, p []byte, off int64) error
	// WriteAt writes p at off; with fua the data is durable on return.
	WriteAt(ctx context.Context, p []byte, off int64, fua bool) error
	// Zero makes the range read as zeroes. With fast set it must fail with
	// ENOTSUP instead of doing anything slower than a plain write of zeroes
	// would be (NBD_CMD_FLAG_FAST_ZERO). noHole is NBD_CMD_FLAG_NO_HOLE.
	Zero(ctx context.Context, off, length int64, flags ZeroFlags) error
	// Trim discards the range (it reads as zeroes afterwards).
	Trim(ctx context.Context, off, length int64, fua bool) error
	// Flush makes every write acknowledged so far durable, on every
	// connection (this is what makes NBD_FLAG_CAN_MULTI_CONN safe).
	Flush(ctx context.Context) error
	// Cache asks for the range to be fetched ahead of reads (NBD_CMD_CACHE).
	Cache(ctx context.Context, off, length int64) error
	// Extents describes [off, off+length) as consecutive runs, starting at
	// off, whose lengths add up to at most length (at least one run).
	Extents(ctx context.Context, off, length int64) ([]Extent, error)
}

// ZeroFlags are the modifiers of NBD_CMD_WRITE_ZEROES.
type ZeroFlags struct {
	FUA    bool // NBD_CMD_FLAG_FUA
	NoHole bool // NBD_CMD_FLAG_NO_HOLE
	Fast   bool // NBD_CMD_FLAG_FAST_ZERO
}

// Extent is one run of a block-status answer (base:allocation).
type Extent struct {
	Length int64
	Hole   bool // NBD_STATE_HOLE: not allocated in the backing store
	Zero   bool // NBD_STATE_ZERO: reads as zeroes
}
