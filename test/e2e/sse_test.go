package e2e

import (
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/testenv/faultproxy"
	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// A bucket whose default encryption is SSE-KMS (or DSSE-KMS, or objects
// under SSE-C) answers every GET with an ETag that is not the body's MD5
// though it looks like one, and says so in its encryption headers. Such a
// disk must read as it does with the C s3backer, which never hashes a body;
// the same ETag without those headers is still a corrupt block, never data.
// versitygw does not encrypt, so the proxy answers as S3 would.
func TestS3OpaqueETags(t *testing.T) {
	need(t, "nbdsh")
	gw := versitygw.Shared(t)
	p := faultproxy.Start(t, gw.URL)
	bucket := gw.NewBucket(t)
	flags := []string{"--size=1M", "--blockSize=64k"}

	const write = `
BS = 65536
for b in range(16):
    h.pwrite((b"%08d" % b) * (BS // 8), b * BS)
h.flush()
`
	s := s3fStart(t, gw, p, bucket, flags...)
	s3fNbdsh(t, s, write)
	s.stop(syscall.SIGTERM)

	notMD5 := func(headers ...string) func(faultproxy.Kind, http.Header) {
		return func(kind faultproxy.Kind, h http.Header) {
			if kind != faultproxy.KindGetObject || h.Get("ETag") == "" {
				return
			}
			h.Set("ETag", `"0123456789abcdef0123456789abcdef"`)
			for i := 0; i+1 < len(headers); i += 2 {
				h.Set(headers[i], headers[i+1])
			}
		}
	}
	for _, enc := range [][]string{
		{"X-Amz-Server-Side-Encryption", "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "arn:aws:kms:us-east-1:111122223333:key/test"},
		{"X-Amz-Server-Side-Encryption", "aws:kms:dsse"},
		{"X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256"},
	} {
		p.SetResponseHeaders(notMD5(enc...))
		s = s3fStart(t, gw, p, bucket, flags...)
		out := s3fNbdsh(t, s, `
BS = 65536
for b in range(16):
    assert h.pread(BS, b * BS) == (b"%08d" % b) * (BS // 8), b
print("ok")
`)
		if strings.TrimSpace(out) != "ok" {
			t.Fatalf("%s: read %q", enc[1], out)
		}
		s.stop(syscall.SIGTERM)
	}

	// The same ETags from a store that does not say they are opaque (or
	// says SSE-S3, whose ETags are MD5s): every block read is an I/O error.
	p.SetResponseHeaders(notMD5("X-Amz-Server-Side-Encryption", "AES256"))
	s = s3fStart(t, gw, p, bucket, flags...)
	out := s3fNbdsh(t, s, `
try:
    h.pread(65536, 65536)
    print("read")
except nbd.Error as e:
    print("errno", e.errno)
`)
	if got := strings.TrimSpace(out); got != "errno EIO" {
		t.Errorf("read of a block whose ETag is not its MD5: %q, want errno EIO", got)
	}
	s.stop(syscall.SIGTERM)
	if log := s.logText(); !strings.Contains(log, "ETag says 0123456789abcdef0123456789abcdef") {
		t.Errorf("the log does not say which ETag failed:\n%s", log)
	}
}
