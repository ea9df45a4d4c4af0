package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// A wrong password is refused at start even when block 0 is a zero block
// (not stored): another stored block is found and checked instead.
func TestEncryptWrongPasswordAtStart(t *testing.T) {
	need(t, "nbdsh")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := append(s3Flags(gw, ""), "--size=1M", "--blockSize=4k", "--encrypt", "--listBlocks")
	// An empty disk has nothing to check the password against: it starts.
	s := startWith(t, false, append(flags, "--password=right"), bucket)
	run(t, "nbdsh", "-u", s.URI, "-c", `h.pwrite(b"secret" * 100, 5 * 4096 + 7, nbd.CMD_FLAG_FUA)`)
	s.stop(syscall.SIGTERM)

	_, err := tryStart(t, false, append(flags, "--password=wrong"), bucket)
	if err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("start with a wrong password: %v, want a refusal", err)
	}
	s = startWith(t, false, append(flags, "--password=right"), bucket)
	run(t, "nbdsh", "-u", s.URI, "-c", `assert h.pread(600, 5 * 4096 + 7) == b"secret" * 100`)
	s.stop(syscall.SIGTERM)

	// No password and no terminal to ask on: one clear line.
	out, err := s3backerOut(t, "", append(flags, "--nbd", "-f", bucket, "nbd+unix:///?socket="+filepath.Join(t.TempDir(), "s"))...)
	if err == nil || !strings.Contains(out, "terminal") {
		t.Fatalf("no password, no terminal: %v %q", err, out)
	}
}
