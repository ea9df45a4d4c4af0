package codec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockkey"
	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// DefaultListThreads is s3backer's --listBlocksThreads default.
const DefaultListThreads = 16

// Options configure a Store.
type Options struct {
	Prefix     string // prepended verbatim to every key ("" or "dir/")
	HashPrefix bool   // --blockHashPrefix
	BlockSize  int    // a power of two
	NumBlocks  uint64 // 1 .. 2^32-1: block numbers are 32-bit in s3backer
	// ListThreads is how many name ranges the survey lists in parallel
	// (--listBlocksThreads); 0 means DefaultListThreads.
	ListThreads int
	// VerifyETag checks that a block's ETag, when it is a plain MD5, is the
	// MD5 of the body read. Callers turn it on unless --sse=aws:kms, whose
	// ETags look like MD5s but are not.
	VerifyETag bool
	// DefaultContentEncoding stands in for a missing Content-Encoding on
	// read (--defaultContentEncoding), for servers that drop the header.
	DefaultContentEncoding string

	// Compress is the compression applied on write: "" (none), "deflate"
	// (zlib format) or "zstd". Reading undoes whatever an object's
	// Content-Encoding says, whatever this is.
	Compress string
	// CompressLevel is the level in the library's own terms: deflate -1
	// (zlib's default, 6) or 0 (stored) to 9; zstd as zstd levels, 0
	// meaning its default (3). Config.CompressLevel holds exactly this.
	CompressLevel int
	// Encrypt is the cipher (s3backer's AES-128-CBC, AES-192-CBC,
	// AES-256-CBC, or our AES-256-GCM) or "" for none. s3backer's CBC
	// implies compression: deflate when Compress is empty. AES-256-GCM
	// does not (config still makes bare --encrypt compress), and needs
	// Open, which reads the disk's key info. Every block read must be
	// encrypted with this cipher and authenticate.
	Encrypt string
	// Password and KeyLength (--keyLength, 0 = the cipher's; CBC only)
	// make the keys. Bucket must be the real bucket name: CBC salts its
	// keys with Bucket + "/" + Prefix, GCM binds both into every block.
	Password  []byte
	KeyLength int
	Bucket    string
	// KDF is the Argon2id cost of a new AES-256-GCM disk's key (zero:
	// aead.DefaultKDF); an existing disk's is read from its key info.
	KDF aead.KDF

	// gcm is the AES-256-GCM key, which only Open can make.
	gcm *aead.Cipher

	// Logger receives debug records; nil discards them.
	Logger *slog.Logger
}

// Store is a blockstore.Store, Surveyor and BulkZeroer over a Backend.
// Writes are synchronous: a nil error means the backend has the object.
//
// It deliberately does not implement blockstore.Prober: telling presence
// costs a HEAD per block, which the zero layer above answers for free.
type Store struct {
	b     backend.Backend
	opt   Options
	names blockkey.Namer
	chain chain
	bufs  *bufPool
	log   *slog.Logger
	// direct: blocks are written as they are and read as they are
	// unless an object says otherwise, so reads land in the caller's
	// buffer (readOpt).
	direct  bool
	threads int

	etagNoted    atomic.Bool // the first non-MD5 ETag was logged
	noBulkDelete atomic.Bool // the backend turned out to have no DeleteMany

	// newKey, for a new AES-256-GCM disk, is its key info, stored before
	// the first block (keyinfo.go); nil otherwise.
	newKey *pendingKeyInfo
}

var (
	_ blockstore.Store      = (*Store)(nil)
	_ blockstore.Surveyor   = (*Store)(nil)
	_ blockstore.BulkZeroer = (*Store)(nil)
)

// New returns a Store over b. It makes no request, so it cannot open an
// AES-256-GCM disk: Open can, and any other too.
func New(b backend.Backend, opt Options) (*Store, error) {
	switch {
	case b == nil:
		return nil, errors.New("codec: no backend")
	case opt.BlockSize <= 0 || bits.OnesCount(uint(opt.BlockSize)) != 1:
		return nil, fmt.Errorf("codec: block size %d is not a power of two", opt.BlockSize)
	case opt.NumBlocks == 0 || opt.NumBlocks > 1<<32-1:
		return nil, fmt.Errorf("codec: %d blocks: must be 1 to 2^32-1", opt.NumBlocks)
	case opt.ListThreads < 0:
		return nil, fmt.Errorf("codec: %d list threads", opt.ListThreads)
	}
	ch, err := newChain(opt)
	if err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	threads := opt.ListThreads
	if threads == 0 {
		threads = DefaultListThreads
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{
		b:       b,
		opt:     opt,
		names:   blockkey.Namer{Prefix: opt.Prefix, HashPrefix: opt.HashPrefix, NumBlocks: opt.NumBlocks},
		chain:   ch,
		bufs:    newBufPool(maxObjectSize(opt.BlockSize) + gcmExtra(opt)),
		direct:  len(ch.write) == 0 && strings.TrimSpace(opt.DefaultContentEncoding) == "",
		log:     log,
		threads: threads,
	}, nil
}

func (s *Store) BlockSize() int    { return s.opt.BlockSize }
func (s *Store) NumBlocks() uint64 { return s.opt.NumBlocks }

// Key is the object name of block n.
func (s *Store) Key(n uint64) string { return s.names.Name(n) }

// Flush has nothing to do: every write is done before WriteBlock returns.
func (s *Store) Flush(ctx context.Context) error { return nil }

// Close releases nothing: the backend belongs to the caller.
func (s *Store) Close() error { return nil }
