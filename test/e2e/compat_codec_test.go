package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3backer-go/s3backer/internal/blockkey"
	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// codecDisk is a 1 MiB disk image that exercises compression: random
// stretches (which deflate cannot shrink), text (which it can), and
// zeroes (which are never stored).
func codecDisk(t *testing.T) []byte {
	t.Helper()
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data[:256<<10]); err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	for i := 0; text.Len() < 384<<10; i++ {
		fmt.Fprintf(&text, "line %d of a compressible log, block %d\n", i, i/400)
	}
	copy(data[256<<10:], text.Bytes()[:384<<10])
	if _, err := rand.Read(data[900<<10 : 1000<<10]); err != nil {
		t.Fatal(err)
	}
	return data
}

// objectHeaders returns the Content-Encoding and HMAC header of an object.
func objectHeaders(t *testing.T, gw *versitygw.Server, bucket, key string) (ce, hmac string) {
	t.Helper()
	out, err := gw.Client().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("HEAD %s: %v", key, err)
	}
	return aws.ToString(out.ContentEncoding), out.Metadata["s3backer-hmac"]
}

// The C s3backer (Debian's 1.5.4: deflate only, "--compress[=LEVEL]") and
// ours share compressed and encrypted disks on a real S3 server: each
// reads, byte for byte, what the other wrote, and both write the same
// Content-Encoding. A wrong password reads nothing but I/O errors.
func TestCompatCodecWithCS3backer(t *testing.T) {
	need(t, "nbdcopy")
	gw := versitygw.Shared(t)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from a file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		flags  []string
		ce     string
		prefix string
		hash   bool
		wrong  []string // flags with a wrong password, when encrypting
	}{
		{name: "compress", flags: []string{"--compress"}, ce: "deflate"},
		{name: "compress-9", flags: []string{"--compress=9"}, ce: "deflate"},
		{name: "encrypt", flags: []string{"--encrypt", "--password=correct horse"}, ce: "deflate, encrypt-AES-128-CBC",
			wrong: []string{"--encrypt", "--password=battery staple"}},
		{name: "encrypt-aes256", flags: []string{"--encrypt=AES-256-CBC", "--passwordFile=" + pwFile}, ce: "deflate, encrypt-AES-256-CBC",
			wrong: []string{"--encrypt=AES-256-CBC", "--password=from a file "}},
		{name: "encrypt-hash-prefix", flags: []string{"--encrypt", "--password=pw", "--blockHashPrefix", "--prefix=disk1/"},
			ce: "deflate, encrypt-AES-128-CBC", prefix: "disk1/", hash: true,
			wrong: []string{"--encrypt=AES-256-CBC", "--password=pw", "--blockHashPrefix", "--prefix=disk1/"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bucket := gw.NewBucket(t)
			flags := append(append(s3Flags(gw, ""), "--blockSize=16k"), c.flags...)
			block0 := blockkey.Namer{Prefix: c.prefix, HashPrefix: c.hash, NumBlocks: 64}.Name(0)
			checkHeaders := func(who string) {
				t.Helper()
				ce, hmac := objectHeaders(t, gw, bucket, block0)
				if ce != c.ce {
					t.Errorf("%s wrote Content-Encoding %q, want %q", who, ce, c.ce)
				}
				if encrypted := strings.Contains(c.ce, "encrypt"); encrypted != (len(hmac) == 42) {
					t.Errorf("%s wrote HMAC header %q", who, hmac)
				}
			}

			// C writes, we read.
			data := codecDisk(t)
			file, stop := cMount(t, bucket, append(flags, "--size=1m")...)
			if err := os.WriteFile(file, data, 0); err != nil {
				t.Fatal(err)
			}
			stop()
			checkHeaders("C")
			s := startWith(t, false, flags, bucket) // geometry from C's block 0
			out := filepath.Join(t.TempDir(), "out")
			run(t, "nbdcopy", s.URI, out)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
				t.Fatal("data written by the C s3backer reads back differently through ours")
			}

			// We write, C reads.
			if _, err := rand.Read(data[:128<<10]); err != nil {
				t.Fatal(err)
			}
			copy(data[700<<10:], bytes.Repeat([]byte("ours, compressible "), 4000))
			in := filepath.Join(t.TempDir(), "in")
			if err := os.WriteFile(in, data, 0o600); err != nil {
				t.Fatal(err)
			}
			run(t, "nbdcopy", "--flush", in, s.URI)
			s.stop(syscall.SIGTERM)
			checkHeaders("ours")
			file, stop = cMount(t, bucket, append(flags, "--readOnly")...)
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			stop()
			if !bytes.Equal(got, data) {
				t.Fatal("data written by us reads back differently through the C s3backer")
			}

			// A wrong password (or cipher) is refused at start, before
			// serving anything (s3backer itself would serve I/O errors).
			if c.wrong == nil {
				return
			}
			_, err = tryStart(t, false, append(append(s3Flags(gw, ""), "--blockSize=16k", "--readOnly"), c.wrong...), bucket)
			if err == nil || !strings.Contains(err.Error(), "does not match") && !strings.Contains(err.Error(), "wrong password") {
				t.Fatalf("start with a wrong key: %v, want a refusal naming the password or cipher", err)
			}
		})
	}
}
