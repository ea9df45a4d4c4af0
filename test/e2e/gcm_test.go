package e2e

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockkey"
	"github.com/s3backer-go/s3backer/internal/codec"
	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// --encrypt=AES-256-GCM, our extension, on a real S3 server: data in with
// nbdcopy, stop, start again (geometry auto-detected from block 0, key
// from the key info object), the same data out. A wrong password, the
// CBC flags, or no --encrypt at all are refused at start, and so is GCM on
// a CBC disk.
func TestGCMOnS3(t *testing.T) {
	need(t, "nbdcopy")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	const size, bs = 8 << 20, 64 << 10
	in, _ := randomFile(t, size)
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	gcm := append(s3Flags(gw, ""), "--encrypt=AES-256-GCM", "--password=right")

	s := startWith(t, false, append(gcm, "--size=8M", "--blockSize=64k"), bucket)
	run(t, "nbdcopy", "--flush", in, s.URI)
	s.stop(syscall.SIGTERM)
	// The non-zero blocks and the key info: nothing else.
	want := append(expectedKeys(data, bs, blockkey.Namer{NumBlocks: size / bs}, false), codec.KeyInfoName)
	slices.Sort(want)
	if got := bucketKeys(t, gw, bucket); !slices.Equal(got, want) {
		t.Fatalf("bucket holds %d keys %v..., want %d %v...", len(got), head(got), len(want), head(want))
	}
	if ce, hmac := objectHeaders(t, gw, bucket, "00000000"); ce != "deflate, encrypt-AES-256-GCM" || hmac != "" {
		t.Errorf("block 0: Content-Encoding %q, HMAC %q", ce, hmac)
	}

	s = startWith(t, false, gcm, bucket) // size and block size from block 0
	out := filepath.Join(t.TempDir(), "out")
	run(t, "nbdcopy", s.URI, out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("data read back differs")
	}
	s.stop(syscall.SIGTERM)

	for _, c := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"wrong password", append(s3Flags(gw, ""), "--encrypt=AES-256-GCM", "--password=wrong"), "wrong password"},
		{"CBC flags", append(s3Flags(gw, ""), "--encrypt", "--password=right"), "is an AES-256-GCM disk"},
		{"no --encrypt", s3Flags(gw, ""), "--encrypt was not given"},
	} {
		if _, err := tryStart(t, false, c.flags, bucket); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: start gave %v, want a refusal saying %q", c.name, err, c.want)
		}
	}

	// And the reverse: a CBC disk is not opened as GCM.
	cbc := gw.NewBucket(t)
	s = startWith(t, false, append(s3Flags(gw, ""), "--size=8M", "--blockSize=64k", "--encrypt", "--password=right"), cbc)
	run(t, "nbdcopy", "--flush", in, s.URI)
	s.stop(syscall.SIGTERM)
	if _, err := tryStart(t, false, gcm, cbc); err == nil || !strings.Contains(err.Error(), "open it with --encrypt=AES-128-CBC") {
		t.Errorf("GCM on a CBC disk: start gave %v, want a refusal", err)
	}
}

// The C s3backer cannot read a GCM disk, as docs/encryption.md says: its
// blocks are I/O errors to it, with or without --encrypt, never data.
func TestGCMNotReadableByCS3backer(t *testing.T) {
	need(t, "nbdsh")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := append(s3Flags(gw, ""), "--size=1M", "--blockSize=64k")
	s := startWith(t, false, append(flags, "--encrypt=AES-256-GCM", "--password=pw"), bucket)
	run(t, "nbdsh", "-u", s.URI, "-c", `h.pwrite(b"secret" * 1000, 0, nbd.CMD_FLAG_FUA)`)
	s.stop(syscall.SIGTERM)
	for _, extra := range [][]string{nil, {"--encrypt", "--password=pw"}} {
		file, stop := cMount(t, bucket, append(append(flags, "--readOnly"), extra...)...)
		data, err := os.ReadFile(file)
		stop()
		t.Logf("C s3backer %v: %v", extra, err)
		if err == nil || !errors.Is(err, syscall.EIO) || bytes.Contains(data, []byte("secret")) {
			t.Errorf("C s3backer %v read the GCM disk: %v", extra, err)
		}
	}
}
