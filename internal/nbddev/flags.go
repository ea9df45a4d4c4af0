package nbddev

// Transmission flags the kernel looks at (uapi linux/nbd.h, NBD_FLAG_*).
const (
	flagHasFlags     = 1 << 0
	flagReadOnly     = 1 << 1
	flagCanMultiConn = 1 << 8
)
