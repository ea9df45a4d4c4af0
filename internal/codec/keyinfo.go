package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend"
)

// KeyInfoName is the key info object's name after the prefix. It does not
// parse as a block name, so surveys (ours and s3backer's) pass it by.
const KeyInfoName = "s3backer-go-keyinfo"

// KeyInfoKey is the key info object of the disk under prefix.
func KeyInfoKey(prefix string) string { return prefix + KeyInfoName }

// ErrBadKeyInfo marks a key info object that cannot be used: damaged, of
// an unknown format or version, made for another bucket or prefix, or
// missing from a disk whose blocks need it.
var ErrBadKeyInfo = errors.New("unusable key info")

const (
	keyInfoFormat  = "s3backer-go key info"
	keyInfoVersion = 1
	// keyInfoMax is more than any key info object is; a larger one is
	// not ours.
	keyInfoMax = 4096
)

// keyInfo is the body of the key info object, JSON: what an AES-256-GCM
// disk's key is derived from (everything but the password) and the check
// value that tells whether a password is the right one (aead.Cipher.Check,
// which covers every other field). It also marks the disk as AES-256-GCM:
// plain and CBC opens refuse a disk that has one.
type keyInfo struct {
	Format  string     `json:"format"`  // keyInfoFormat
	Version int        `json:"version"` // keyInfoVersion
	Mode    string     `json:"mode"`    // aead.Name
	Bucket  string     `json:"bucket"`  // where the disk lives: bound into
	Prefix  string     `json:"prefix"`  // every block and the check
	KDF     keyInfoKDF `json:"kdf"`
	Check   []byte     `json:"check"` // base64, aead.CheckSize bytes
}

type keyInfoKDF struct {
	Name      string `json:"name"` // aead.KDFName
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memoryKiB"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"` // base64
}

func (ki *keyInfo) params() aead.Params {
	return aead.Params{Bucket: ki.Bucket, Prefix: ki.Prefix, Salt: ki.KDF.Salt,
		KDF: aead.KDF{Time: ki.KDF.Time, MemoryKiB: ki.KDF.MemoryKiB, Threads: ki.KDF.Threads}}
}

// newKeyInfoBody makes the key info of a new disk from c's parameters.
func newKeyInfoBody(c *aead.Cipher) ([]byte, error) {
	p := c.Params()
	ki := keyInfo{Format: keyInfoFormat, Version: keyInfoVersion, Mode: aead.Name, Bucket: p.Bucket, Prefix: p.Prefix,
		KDF:   keyInfoKDF{Name: aead.KDFName, Time: p.KDF.Time, MemoryKiB: p.KDF.MemoryKiB, Threads: p.KDF.Threads, Salt: p.Salt},
		Check: c.Check()}
	b, err := json.MarshalIndent(ki, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode key info: %w", err)
	}
	return append(b, '\n'), nil
}

// parseKeyInfo reads a key info body strictly: a field this version does
// not know means a format it cannot vouch for.
func parseKeyInfo(body []byte) (*keyInfo, error) {
	var ki keyInfo
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&ki); err != nil {
		return nil, fmt.Errorf("not valid key info JSON: %w", err)
	}
	if d.More() {
		return nil, errors.New("not valid key info JSON: data after the object")
	}
	switch {
	case ki.Format != keyInfoFormat:
		return nil, fmt.Errorf("format is %q, not %q", ki.Format, keyInfoFormat)
	case ki.Version != keyInfoVersion:
		return nil, fmt.Errorf("format version %d, but this s3backer-go reads version %d (a newer one made it?)", ki.Version, keyInfoVersion)
	case ki.Mode != aead.Name:
		return nil, fmt.Errorf("encryption mode %q is not supported (want %s)", ki.Mode, aead.Name)
	case ki.KDF.Name != aead.KDFName:
		return nil, fmt.Errorf("key derivation %q is not supported (want %s)", ki.KDF.Name, aead.KDFName)
	case len(ki.Check) != aead.CheckSize:
		return nil, fmt.Errorf("check value of %d bytes, want %d", len(ki.Check), aead.CheckSize)
	case len(ki.KDF.Salt) < 8:
		return nil, fmt.Errorf("salt of %d bytes is too short", len(ki.KDF.Salt))
	}
	if err := ki.params().KDF.Validate(); err != nil {
		return nil, err
	}
	return &ki, nil
}

// readKeyInfo fetches the key info object's body (found false if there is
// none).
func readKeyInfo(ctx context.Context, b backend.Backend, prefix string) (body []byte, found bool, err error) {
	key := KeyInfoKey(prefix)
	buf := make([]byte, keyInfoMax)
	n, _, err := b.Get(ctx, key, buf, backend.GetOptions{})
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return nil, false, nil
	case errors.Is(err, backend.ErrTooLarge):
		return nil, true, fmt.Errorf("key info %s is larger than %d bytes: not s3backer-go's: %w", key, keyInfoMax, ErrBadKeyInfo)
	case err != nil:
		return nil, false, fmt.Errorf("read key info %s: %w", key, err)
	}
	return buf[:n], true, nil
}

// pendingKeyInfo is a new disk's key info, not stored yet. It is stored
// before the first block is (storeNewKey), not at Open: by then the
// caller holds the 'already mounted' flag, so two first starts of one disk
// cannot both store their own salt, and a disk opened but never written
// (read-only, or only zeros) is left as it was.
type pendingKeyInfo struct {
	mu     sync.Mutex
	stored atomic.Bool
	body   []byte
}

// storeNewKey stores the pending key info, once, unless the same is there
// already (a retry after a lost answer). Another key info found there
// means another process made the disk meanwhile with its own salt: no
// block is written under a key nobody could derive again.
func (s *Store) storeNewKey(ctx context.Context) error {
	p := s.newKey
	if p == nil || p.stored.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stored.Load() {
		return nil
	}
	key := KeyInfoKey(s.opt.Prefix)
	body, found, err := readKeyInfo(ctx, s.b, s.opt.Prefix)
	switch {
	case err != nil:
		return fmt.Errorf("store the new disk's key info: %w", err)
	case found && !bytes.Equal(body, p.body):
		return fmt.Errorf("key info %s appeared after this process opened the disk: another process made it an "+
			"AES-256-GCM disk with its own salt; stop and start again", key)
	case !found:
		if _, err := s.b.Put(ctx, key, p.body, backend.Meta{ContentType: "application/json"}); err != nil {
			return fmt.Errorf("store the new disk's key info %s: %w", key, err)
		}
		s.log.Info("stored the key info of a new AES-256-GCM disk; keep a copy with the password: without it the disk cannot be decrypted", "key", key)
	}
	p.stored.Store(true)
	return nil
}
