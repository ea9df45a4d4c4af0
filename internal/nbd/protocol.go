package nbd

// Wire constants of the NBD protocol (fixed newstyle), named as in the
// specification (NetworkBlockDevice/nbd doc/proto.md). Every integer on the
// wire is big-endian.

// Magic numbers.
const (
	nbdMagic             = 0x4e42444d41474943 // "NBDMAGIC"
	optMagic             = 0x49484156454F5054 // "IHAVEOPT"
	optReplyMagic        = 0x3e889045565a9
	requestMagic         = 0x25609513
	simpleReplyMagic     = 0x67446698
	structuredReplyMagic = 0x668e33ef
)

// Handshake flags (server) and client flags.
const (
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	clientFlagFixedNewstyle = 1 << 0
	clientFlagNoZeroes      = 1 << 1
	clientFlagsKnown        = clientFlagFixedNewstyle | clientFlagNoZeroes
)

// Transmission flags.
const (
	flagHasFlags        = 1 << 0
	flagReadOnly        = 1 << 1
	flagSendFlush       = 1 << 2
	flagSendFUA         = 1 << 3
	flagRotational      = 1 << 4
	flagSendTrim        = 1 << 5
	flagSendWriteZeroes = 1 << 6
	flagSendDF          = 1 << 7
	flagCanMultiConn    = 1 << 8
	flagSendResize      = 1 << 9
	flagSendCache       = 1 << 10
	flagSendFastZero    = 1 << 11
)

// Option types.
const (
	optExportName      = 1
	optAbort           = 2
	optList            = 3
	optPeekExport      = 4
	optStartTLS        = 5
	optInfo            = 6
	optGo              = 7
	optStructuredReply = 8
	optListMetaContext = 9
	optSetMetaContext  = 10
	optExtendedHeaders = 11
)

// Option reply types; errors have bit 31 set.
const (
	repAck         = 1
	repServer      = 2
	repInfo        = 3
	repMetaContext = 4

	repErrUnsup          = 1<<31 + 1
	repErrPolicy         = 1<<31 + 2
	repErrInvalid        = 1<<31 + 3
	repErrPlatform       = 1<<31 + 4
	repErrTLSReqd        = 1<<31 + 5
	repErrUnknown        = 1<<31 + 6
	repErrShutdown       = 1<<31 + 7
	repErrBlockSizeReqd  = 1<<31 + 8
	repErrTooBig         = 1<<31 + 9
	repErrExtHeaderReqd  = 1<<31 + 10
	repErrorBit          = 1 << 31
	optReplyHeaderLength = 20
)

// NBD_REP_INFO information types.
const (
	infoExport      = 0
	infoName        = 1
	infoDescription = 2
	infoBlockSize   = 3
)

// Command types.
const (
	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdCache       = 5
	cmdWriteZeroes = 6
	cmdBlockStatus = 7
)

// Command flags.
const (
	cmdFlagFUA        = 1 << 0
	cmdFlagNoHole     = 1 << 1
	cmdFlagDF         = 1 << 2
	cmdFlagReqOne     = 1 << 3
	cmdFlagFastZero   = 1 << 4
	cmdFlagPayloadLen = 1 << 5 // extended headers only; never valid here
)

// Structured reply flags and chunk types.
const (
	replyFlagDone = 1 << 0

	replyTypeNone        = 0
	replyTypeOffsetData  = 1
	replyTypeOffsetHole  = 2
	replyTypeBlockStatus = 5
	replyTypeError       = 1<<15 + 1
	replyTypeErrorOffset = 1<<15 + 2
)

// base:allocation status flags.
const (
	stateHole = 1 << 0
	stateZero = 1 << 1
)

// NBD error values (not host errno values: the protocol fixes these).
const (
	errPerm      = 1
	errIO        = 5
	errNoMem     = 12
	errInval     = 22
	errNoSpc     = 28
	errOverflow  = 75
	errNotSup    = 95
	errShutdown  = 108
	maxErrMsgLen = 4096 // protocol limit on any string
)

// Sizes of fixed wire structures.
const (
	requestHeaderLen    = 28 // magic, flags, type, cookie, offset, length
	simpleReplyLen      = 16 // magic, error, cookie
	structuredHeaderLen = 20 // magic, flags, type, cookie, length
	optionHeaderLen     = 16 // magic, option, length
)

// Metadata contexts: this server knows exactly one.
const (
	metaBaseAllocation   = "base:allocation"
	metaBaseAllocationID = 1 // opaque to clients; nonzero so it is not mistaken for "reserved"
)

// cmdName names commands in logs and error messages.
func cmdName(t uint16) string {
	switch t {
	case cmdRead:
		return "read"
	case cmdWrite:
		return "write"
	case cmdDisc:
		return "disc"
	case cmdFlush:
		return "flush"
	case cmdTrim:
		return "trim"
	case cmdCache:
		return "cache"
	case cmdWriteZeroes:
		return "write_zeroes"
	case cmdBlockStatus:
		return "block_status"
	}
	return "unknown"
}
