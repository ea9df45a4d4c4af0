package codec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockkey"
)

var (
	// ErrWrongPassword: the password does not unlock an AES-256-GCM
	// disk's key info (or the key info was edited).
	ErrWrongPassword = errors.New("wrong password, or altered key info")
	// ErrWrongMode: the disk's encryption is not the configured one
	// (AES-256-GCM opened as plain or CBC, or the reverse).
	ErrWrongMode = errors.New("encryption mode does not match the disk")
)

// Open returns a Store over b, like New, after one GET of the disk's key
// info object (keyinfo.go), which marks an AES-256-GCM disk and holds what
// its key is derived from. So a disk is opened in its own mode or not at
// all, with a message that says which mode it wants:
//
//   - a GCM disk opened without --encrypt=AES-256-GCM (plain or CBC) is
//     refused (ErrWrongMode);
//   - with --encrypt=AES-256-GCM, the key is derived from the password and
//     the recorded salt and KDF (Argon2id: a fraction of a second) and
//     checked against the recorded check value: a wrong password is
//     ErrWrongPassword, damaged key info ErrBadKeyInfo;
//   - with --encrypt=AES-256-GCM and no key info, a disk that holds blocks
//     already (plain or CBC) is refused, ErrWrongMode (one HEAD, and a LIST when block 0
//     is absent); an empty one becomes a new GCM disk, with a random salt,
//     whose key info is stored before its first block.
//
// Other modes cost just the GET.
func Open(ctx context.Context, b backend.Backend, opt Options) (*Store, error) {
	if b == nil {
		return nil, errors.New("codec: no backend")
	}
	opt.gcm = nil // made here only
	where := opt.Bucket + "/" + opt.Prefix
	body, found, err := readKeyInfo(ctx, b, opt.Prefix)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(opt.Encrypt, aead.Name) {
		if found {
			return nil, notGCMError(where, KeyInfoKey(opt.Prefix), opt.Encrypt, body)
		}
		return New(b, opt)
	}

	var newKey *pendingKeyInfo
	if found {
		if opt.gcm, err = unlock(body, opt); err != nil {
			return nil, err
		}
	} else {
		if err := refuseStored(ctx, b, opt); err != nil {
			return nil, err
		}
		if opt.gcm, newKey, err = newDiskKey(opt); err != nil {
			return nil, fmt.Errorf("new AES-256-GCM key for %s: %w", where, err)
		}
	}
	s, err := New(b, opt)
	if err != nil {
		return nil, err
	}
	s.newKey = newKey
	return s, nil
}

// notGCMError is the refusal of a GCM disk opened in another mode.
func notGCMError(where, key, encrypt string, body []byte) error {
	given := "--encrypt was not given"
	if encrypt != "" {
		given = "--encrypt=" + encrypt + " was given"
	}
	if _, err := parseKeyInfo(body); err != nil {
		return fmt.Errorf("%s has s3backer-go key info (%s), so it is an encrypted disk, but %s; "+
			"the key info is unusable too (%v): %w", where, key, given, err, ErrWrongMode)
	}
	return fmt.Errorf("%s is an AES-256-GCM disk (key info in %s) but %s; open it with --encrypt=%s "+
		"and its password: %w", where, key, given, aead.Name, ErrWrongMode)
}

// unlock derives the key of an existing GCM disk from its key info and
// checks the password against it.
func unlock(body []byte, opt Options) (*aead.Cipher, error) {
	key, where := KeyInfoKey(opt.Prefix), opt.Bucket+"/"+opt.Prefix
	ki, err := parseKeyInfo(body)
	if err != nil {
		return nil, fmt.Errorf("key info %s is damaged (%v); it holds the salt without which the disk "+
			"cannot be decrypted: restore it from a copy: %w", key, err, ErrBadKeyInfo)
	}
	if ki.Bucket != opt.Bucket || ki.Prefix != opt.Prefix {
		return nil, fmt.Errorf("key info %s was made for the disk at %s/%s, not %s: an AES-256-GCM disk is "+
			"bound to its bucket and prefix, and its blocks do not authenticate anywhere else: %w",
			key, ki.Bucket, ki.Prefix, where, ErrBadKeyInfo)
	}
	c, err := aead.Derive(opt.Password, ki.params())
	if err != nil {
		return nil, fmt.Errorf("key info %s: %v: %w", key, err, ErrBadKeyInfo)
	}
	if !c.Verify(ki.Check) {
		return nil, fmt.Errorf("cannot unlock %s with this password (AES-256-GCM key info %s): %w", where, key, ErrWrongPassword)
	}
	return c, nil
}

// newDiskKey makes a new disk's key: a random salt, the KDF of opt.
func newDiskKey(opt Options) (*aead.Cipher, *pendingKeyInfo, error) {
	salt, err := aead.NewSalt()
	if err != nil {
		return nil, nil, err
	}
	kdf := kdfFor(opt)
	start := time.Now()
	c, err := aead.Derive(opt.Password, aead.Params{Bucket: opt.Bucket, Prefix: opt.Prefix, Salt: salt, KDF: kdf})
	if err != nil {
		return nil, nil, err
	}
	if opt.Logger != nil {
		opt.Logger.Debug("derived a new AES-256-GCM key", "kdf", kdf.String(), "took", time.Since(start))
	}
	body, err := newKeyInfoBody(c)
	if err != nil {
		return nil, nil, err
	}
	return c, &pendingKeyInfo{body: body}, nil
}

// refuseStored fails if the disk, which has no key info, holds a block:
// it is a plain or CBC disk (or a GCM disk that lost its key info), and
// blocks of another mode must not be mixed into it.
func refuseStored(ctx context.Context, b backend.Backend, opt Options) error {
	names := blockkey.Namer{Prefix: opt.Prefix, HashPrefix: opt.HashPrefix, NumBlocks: opt.NumBlocks}
	n, info, found, err := firstStored(ctx, b, names)
	if err != nil {
		return fmt.Errorf("look for blocks of another encryption: %w", err)
	}
	if !found {
		return nil
	}
	where, ce := opt.Bucket+"/"+opt.Prefix, info.ContentEncoding
	tokens := parseContentEncoding(ce)
	enc := ""
	if len(tokens) > 0 && isEncryption(tokens[len(tokens)-1]) {
		enc = strings.ToUpper(tokens[len(tokens)-1][len(encryptPrefix):])
	}
	switch enc {
	case aead.Name:
		return fmt.Errorf("%s holds AES-256-GCM blocks (block %d) but no key info %s: it holds the salt without "+
			"which they cannot be decrypted; restore it from a copy: %w", where, n, KeyInfoKey(opt.Prefix), ErrBadKeyInfo)
	case "":
		if ce != "" {
			ce = fmt.Sprintf(", Content-Encoding %q", ce)
		}
		return fmt.Errorf("%s holds unencrypted blocks (block %d%s), so it is not an AES-256-GCM disk, and a disk "+
			"cannot be converted in place; open it without --encrypt, or copy it to a new disk: %w", where, n, ce, ErrWrongMode)
	}
	return fmt.Errorf("%s holds blocks encrypted by s3backer's %s (block %d), not an AES-256-GCM disk; open it with "+
		"--encrypt=%s: %w", where, enc, n, enc, ErrWrongMode)
}

// firstStored finds a stored block: block 0 (one HEAD), else the first
// block name a listing of the prefix meets.
func firstStored(ctx context.Context, b backend.Backend, names blockkey.Namer) (n uint64, info backend.Info, found bool, err error) {
	info, err = b.Head(ctx, names.Name(0))
	switch {
	case err == nil:
		return 0, info, true, nil
	case !errors.Is(err, backend.ErrNotFound):
		return 0, info, false, err
	}
	var key string
	err = b.List(ctx, names.Prefix, "", func(k string) error {
		if m, ok := names.Parse(k); ok {
			n, key, found = m, k, true
			return backend.ErrStop
		}
		return nil
	})
	if err != nil || !found {
		return 0, info, false, err
	}
	info, err = b.Head(ctx, key)
	if errors.Is(err, backend.ErrNotFound) { // zeroed meanwhile
		return 0, info, false, nil
	}
	return n, info, err == nil, err
}

// kdfFor is the KDF of a new disk: opt's, or the default.
func kdfFor(opt Options) aead.KDF {
	if opt.KDF == (aead.KDF{}) {
		return aead.DefaultKDF
	}
	return opt.KDF
}
