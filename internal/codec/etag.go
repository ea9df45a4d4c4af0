package codec

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/md5sum"
)

// plainMD5 returns the digest an ETag holds when it is a plain MD5: 32 hex
// digits (either case, S3 sends lower). Multipart ("…-N"), weak and missing
// ETags are not, and cannot be checked against a body.
func plainMD5(etag string) (sum [md5.Size]byte, ok bool) {
	etag = strings.Trim(etag, `"`) // backends strip quotes; be lenient
	if len(etag) != 2*md5.Size {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(etag)); err != nil {
		return sum, false
	}
	return sum, true
}

// checkETag verifies a body read against the ETag of its answer, when
// asked to and when the ETag is an MD5 at all. A mismatch means the bytes
// changed on the way (or the store lies): corrupt, never data. t is the
// Ticket taken for the body's MD5 when its GET started (nil without
// VerifyETag); checkETag ends it.
func (s *Store) checkETag(body []byte, info backend.Info, t *md5sum.Ticket) error {
	if !s.opt.VerifyETag {
		return nil
	}
	want, ok := plainMD5(info.ETag)
	if !ok || info.OpaqueETag {
		t.Cancel()
		if s.etagNoted.CompareAndSwap(false, true) {
			s.log.Debug("ETag is not the MD5 of the object; reads are not checked against it",
				"etag", info.ETag, "server-side-encrypted", info.OpaqueETag)
		}
		return nil
	}
	if got := t.Sum(body); got != want {
		return fmt.Errorf("MD5 of the %d bytes read is %x, ETag says %x: %w", len(body), got, want, blockstore.ErrCorrupt)
	}
	return nil
}
