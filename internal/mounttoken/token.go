// Package mounttoken is s3backer's 'already mounted' flag: the object
// PREFIX+"s3backer-mounted", present while a disk is in use, holding a
// random 32-bit mount token (FORMAT.md, "The 'already mounted' flag").
// It is byte-compatible with the C s3backer, so the two programs refuse
// each other's concurrent mounts.
package mounttoken

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// Shared is the token of --sharedDiskMode, which several mounts may hold at
// once.
const Shared uint32 = 0x7fffffff

const (
	objectName  = "s3backer-mounted"
	metaToken   = "s3backer-mount-token" // x-amz-meta-s3backer-mount-token
	contentType = "text/plain"
	timeLayout  = "20060102T150405Z" // %Y%m%dT%H%M%SZ, UTC
)

// Key is the flag's object name under prefix (never hash-prefixed).
func Key(prefix string) string { return prefix + objectName }

// NewToken returns a random mount token. Like s3backer's it is a positive
// int32 (its cache file keeps the token signed) and never Shared.
func NewToken() uint32 {
	return 1 + rand.Uint32N(uint32(Shared)-1) // 1 .. 0x7ffffffe
}

// parseToken reads the header like s3backer's %x. An object without a
// usable token is the pre-1.5 boolean flag: token 1.
func parseToken(v string) uint32 {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X")
	t, err := strconv.ParseUint(v, 16, 32)
	if err != nil || t == 0 {
		return 1
	}
	return uint32(t)
}

// Read returns the token of the flag under prefix (one HEAD). present is
// false when there is no flag.
func Read(ctx context.Context, b backend.Backend, prefix string) (token uint32, present bool, err error) {
	info, err := b.Head(ctx, Key(prefix))
	if errors.Is(err, backend.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read mount flag: %w", err)
	}
	return parseToken(info.User[metaToken]), true, nil
}

// body is what s3backer writes in the flag: who set it and when.
func body(now time.Time) []byte {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return []byte(host + "\n" + now.UTC().Format(timeLayout) + "\n")
}

// Write sets the flag under prefix to token (one PUT).
func Write(ctx context.Context, b backend.Backend, prefix string, token uint32) error {
	if token == 0 {
		return fmt.Errorf("write mount flag: token 0 means not mounted (use Clear): %w", syscall.EINVAL)
	}
	meta := backend.Meta{
		ContentType: contentType,
		User:        map[string]string{metaToken: fmt.Sprintf("%08x", token)},
	}
	if _, err := b.Put(ctx, Key(prefix), body(time.Now()), meta); err != nil {
		return fmt.Errorf("write mount flag: %w", err)
	}
	return nil
}

// Clear removes the flag under prefix (one DELETE; no flag is no error).
// This is --reset-mounted-flag.
func Clear(ctx context.Context, b backend.Backend, prefix string) error {
	if err := b.Delete(ctx, Key(prefix)); err != nil {
		return fmt.Errorf("clear mount flag: %w", err)
	}
	return nil
}
