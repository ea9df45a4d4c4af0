package nbd

import (
	"log/slog"
	"math/bits"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxInFlight      = 64
	DefaultMaxPayload       = 32 << 20 // the spec's interoperable maximum (2^25)
	DefaultMaxBufferedBytes = 256 << 20
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultWriteTimeout     = 60 * time.Second
)

const (
	// minPayload is the smallest MaxPayload accepted: the preferred block
	// size must be at least 512 and the maximum payload at least that.
	minPayload = 512
	// maxPayloadLimit keeps a READ chunk (payload + 8-byte offset) well
	// inside the 32-bit length field of a structured reply.
	maxPayloadLimit = 1 << 30
	// maxOptionLen bounds the option data held in memory during the
	// handshake; real options are a few strings of at most 4096 bytes.
	maxOptionLen = 64 << 10
	// maxOptionDiscard is how much oversized option data is skipped to
	// answer NBD_REP_ERR_TOO_BIG; anything larger is treated as a denial
	// of service (or a desynchronised stream) and the connection dropped.
	maxOptionDiscard = 1 << 20
	// maxExtents bounds the descriptors in one NBD_REPLY_TYPE_BLOCK_STATUS
	// chunk so that the whole chunk fits a 128 KiB buffer (the spec's bound
	// is 2^20; clients ask again for the rest).
	maxExtents = (128<<10 - structuredHeaderLen - 4) / 8
	// interopPayload is the payload size the spec says SHOULD NOT be
	// treated as a denial of service even when above the advertised maximum.
	interopPayload = 1 << 25
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// ExportName is the canonical name shown by NBD_OPT_LIST and
	// NBD_INFO_NAME. Any requested name is accepted (there is one export).
	ExportName string
	// Description is shown by NBD_OPT_LIST and NBD_INFO_DESCRIPTION.
	Description string
	// MaxInFlight bounds the requests of one connection being worked on
	// at once (default 64).
	MaxInFlight int
	// MaxPayload is the largest READ/WRITE payload accepted and the maximum
	// advertised in NBD_INFO_BLOCK_SIZE (default 32 MiB, at least 512,
	// at most 1 GiB). It should be at least the device block size; the
	// advertised preferred block size is capped to it.
	MaxPayload int
	// MaxBufferedBytes bounds, server-wide, the payload bytes held by
	// in-flight requests (default 256 MiB; raised if needed so that one
	// maximal request fits).
	MaxBufferedBytes int64
	// HandshakeTimeout bounds the whole option negotiation (default 30 s);
	// a client that stalls in it is dropped.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds the sending of one reply (default 60 s). A client
	// that stops reading its replies is dropped rather than allowed to pin
	// buffer memory that other connections need.
	WriteTimeout time.Duration
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Observer counts sessions and requests; nil counts nothing.
	Observer Observer
}

// withDefaults returns opt with zero fields defaulted and out-of-range
// fields clamped, so the rest of the package can trust every value.
func (opt Options) withDefaults() Options {
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = DefaultMaxInFlight
	}
	if opt.MaxPayload <= 0 {
		opt.MaxPayload = DefaultMaxPayload
	}
	opt.MaxPayload = min(max(opt.MaxPayload, minPayload), maxPayloadLimit)
	if opt.MaxBufferedBytes <= 0 {
		opt.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	// A single request must always be able to acquire its weight, or the
	// semaphore would block it forever.
	opt.MaxBufferedBytes = max(opt.MaxBufferedBytes, int64(classSize(opt.MaxPayload)), blockStatusWeight)
	if opt.HandshakeTimeout <= 0 {
		opt.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Observer == nil {
		opt.Observer = nopObserver{}
	}
	return opt
}

// preferredBlockSize is the NBD_INFO_BLOCK_SIZE preferred value: the
// device's block size if it is a power of two, at least 512 (the spec's
// floor) and at most maxPayload (the spec requires maximum >= preferred).
func preferredBlockSize(devBlock, maxPayload int) uint32 {
	p := 4096
	if devBlock > 0 && devBlock&(devBlock-1) == 0 {
		p = devBlock
	}
	p = max(p, 512)
	if p > maxPayload {
		p = 1 << (bits.Len(uint(maxPayload)) - 1) // largest power of two <= maxPayload
	}
	return uint32(p)
}
