package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3backer-go/s3backer/internal/blockkey"
	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// s3Flags are the flags that point s3backer at a versitygw on loopback.
func s3Flags(gw *versitygw.Server, baseURL string) []string {
	if baseURL == "" {
		baseURL = gw.URL
	}
	return []string{"--baseURL=" + baseURL, "--accessId=" + gw.AccessKey, "--accessKey=" + gw.SecretKey}
}

// bucketKeys lists every key in a bucket.
func bucketKeys(t *testing.T, gw *versitygw.Server, bucket string) []string {
	t.Helper()
	var keys []string
	p := awss3.NewListObjectsV2Paginator(gw.Client(), &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

// expectedKeys are the object names s3backer gives the non-zero blocks of
// data, plus the mount flag if flagged.
func expectedKeys(data []byte, blockSize int, k blockkey.Namer, flagged bool) []string {
	var keys []string
	for n := 0; n*blockSize < len(data); n++ {
		if !bytes.Equal(data[n*blockSize:(n+1)*blockSize], make([]byte, blockSize)) {
			keys = append(keys, k.Name(uint64(n)))
		}
	}
	if flagged {
		keys = append(keys, k.Prefix+"s3backer-mounted")
	}
	slices.Sort(keys)
	return keys
}

// A disk on a real S3 server: data in, stop, start again (size detected
// from block 0), data out; object names exactly s3backer's; the mount flag
// there while running and gone after.
func TestS3RoundTrip(t *testing.T) {
	need(t, "nbdcopy")
	gw := versitygw.Shared(t)
	const size, bs = 8 << 20, 64 << 10
	for _, c := range []struct {
		name   string
		flags  []string
		subdir string
		namer  blockkey.Namer
	}{
		{"plain", nil, "", blockkey.Namer{NumBlocks: size / bs}},
		{"hash", []string{"--blockHashPrefix"}, "", blockkey.Namer{HashPrefix: true, NumBlocks: size / bs}},
		{"prefix", []string{"--prefix=disks/one-"}, "", blockkey.Namer{Prefix: "disks/one-", NumBlocks: size / bs}},
		{"subdir", []string{"--blockHashPrefix"}, "/sub/dir", blockkey.Namer{Prefix: "sub/dir/", HashPrefix: true, NumBlocks: size / bs}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bucket := gw.NewBucket(t)
			in, _ := randomFile(t, size)
			data, _ := os.ReadFile(in)
			flags := append(s3Flags(gw, ""), c.flags...)
			s := startWith(t, false, append(flags, "--size=8M", "--blockSize=64k"), bucket+c.subdir)
			run(t, "nbdcopy", "--flush", in, s.URI)
			if got, want := bucketKeys(t, gw, bucket), expectedKeys(data, bs, c.namer, true); !slices.Equal(got, want) {
				t.Fatalf("bucket holds %d keys %v..., want %d %v...", len(got), head(got), len(want), head(want))
			}
			s.stop(syscall.SIGTERM)
			if got, want := bucketKeys(t, gw, bucket), expectedKeys(data, bs, c.namer, false); !slices.Equal(got, want) {
				t.Fatalf("after stop the bucket holds %d keys (mount flag left?): %v", len(got), head(got))
			}
			// Size and block size come from block 0 now.
			s = startWith(t, false, flags, bucket+c.subdir)
			out := filepath.Join(t.TempDir(), "out")
			run(t, "nbdcopy", s.URI, out)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
				t.Fatal("data read back differs")
			}
			s.stop(syscall.SIGINT)
		})
	}
}

func head(s []string) []string { return s[:min(len(s), 4)] }

// s3backerOut runs the binary to completion and returns its output.
func s3backerOut(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = testEnv(t)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The 'already mounted' flag: a second instance is refused, a killed one
// leaves the flag, --reset-mounted-flag clears it, --force overrides.
func TestS3AlreadyMounted(t *testing.T) {
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := append(s3Flags(gw, ""), "--size=1M", "--blockSize=4k")
	a := startWith(t, false, flags, bucket)
	_, err := tryStart(t, false, flags, bucket)
	if err == nil || !strings.Contains(err.Error(), "--reset-mounted-flag") {
		t.Fatalf("second instance: %v, want a refusal naming --reset-mounted-flag", err)
	}
	// --force takes over; then the first must not clear the flag it no
	// longer owns.
	b := startWith(t, false, append(flags, "--force"), bucket)
	b.stop(syscall.SIGTERM)
	a.stop(syscall.SIGTERM)

	// A killed instance leaves the flag behind.
	c := startWith(t, false, flags, bucket)
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
	if !slices.Contains(bucketKeys(t, gw, bucket), "s3backer-mounted") {
		t.Fatal("no mount flag after kill -9")
	}
	if _, err := tryStart(t, false, flags, bucket); err == nil {
		t.Fatal("started over a stale flag without --force")
	}
	out, err := s3backerOut(t, "", append(flags, "--reset-mounted-flag", bucket)...)
	if err != nil || !strings.Contains(out, "cleared") {
		t.Fatalf("--reset-mounted-flag: %v %s", err, out)
	}
	startWith(t, false, flags, bucket).stop(syscall.SIGTERM)
	if keys := bucketKeys(t, gw, bucket); len(keys) != 0 {
		t.Fatalf("bucket not empty after a clean stop: %v", keys)
	}
}

// A start that fails after setting the flag removes it again; wrong
// credentials and a missing bucket fail with one clear line.
func TestS3StartFailures(t *testing.T) {
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	sock := "nbd+unix:///?socket=" + filepath.Join(t.TempDir(), "s")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--baseURL=" + gw.URL, "--accessId=" + gw.AccessKey, "--accessKey=wrong", "--size=1M", bucket}, "credentials"},
		{append(s3Flags(gw, ""), "--size=1M", "no-such-bucket-here"), "no-such-bucket-here"},
		{append(s3Flags(gw, ""), bucket), "--size"}, // nothing to auto-detect from
	} {
		out, err := s3backerOut(t, "", append(append([]string{"--nbd", "-f"}, c.args...), sock)...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: %v %q, want failure mentioning %q", c.args, err, out, c.want)
		}
	}
	// A socket path that cannot be listened on fails after the flag is set.
	bad := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(bad, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := s3backerOut(t, "", append(s3Flags(gw, ""), "--nbd", "-f", "--size=1M", bucket, "nbd+unix:///?socket="+bad)...)
	if err == nil {
		t.Fatalf("start on a bad socket succeeded: %s", out)
	}
	if keys := bucketKeys(t, gw, bucket); len(keys) != 0 {
		t.Fatalf("failed start left %v in the bucket", keys)
	}
}

// Size auto-detection: a size mismatch is refused unless --force.
func TestS3AutoDetect(t *testing.T) {
	need(t, "nbdsh", "nbdinfo")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := s3Flags(gw, "")
	s := startWith(t, false, append(flags, "--size=16M", "--blockSize=64k"), bucket)
	run(t, "nbdsh", "-u", s.URI, "-c", `h.pwrite(b"x" * 100, 0, nbd.CMD_FLAG_FUA)`)
	s.stop(syscall.SIGTERM)

	s = startWith(t, false, flags, bucket)
	if out := run(t, "nbdinfo", "--size", s.URI); strings.TrimSpace(out) != fmt.Sprint(16<<20) {
		t.Fatalf("auto-detected size %s, want %d", out, 16<<20)
	}
	s.stop(syscall.SIGTERM)
	if _, err := tryStart(t, false, append(flags, "--size=32M"), bucket); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("size mismatch: %v, want a refusal naming --force", err)
	}
	s = startWith(t, false, append(flags, "--size=32M", "--force"), bucket)
	if out := run(t, "nbdinfo", "--size", s.URI); strings.TrimSpace(out) != fmt.Sprint(32<<20) {
		t.Fatalf("forced size %s, want %d", out, 32<<20)
	}
	s.stop(syscall.SIGTERM)
	s = startWith(t, false, append(flags, "--noAutoDetect", "--size=4M", "--blockSize=64k"), bucket)
	if out := run(t, "nbdinfo", "--size", s.URI); strings.TrimSpace(out) != fmt.Sprint(4<<20) {
		t.Fatalf("--noAutoDetect size %s, want %d", out, 4<<20)
	}
	s.stop(syscall.SIGTERM)
}

// --erase deletes every block and the flag, after confirmation.
func TestS3Erase(t *testing.T) {
	need(t, "nbdcopy")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := append(s3Flags(gw, ""), "--size=4M", "--blockSize=4k")
	in, _ := randomFile(t, 4<<20)
	s := startWith(t, false, flags, bucket)
	run(t, "nbdcopy", "--flush", in, s.URI)
	s.stop(syscall.SIGTERM)
	before := len(bucketKeys(t, gw, bucket))
	if before == 0 {
		t.Fatal("nothing stored")
	}
	// An unrelated object under another prefix survives.
	if _, err := gw.Client().PutObject(context.Background(), &awss3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("other/keep-me"), Body: bytes.NewReader([]byte("x")),
	}); err != nil {
		t.Fatal(err)
	}
	if out, err := s3backerOut(t, "n\n", append(flags, "--erase", bucket)...); err == nil {
		t.Fatalf("erase went ahead without a yes: %s", out)
	}
	if got := len(bucketKeys(t, gw, bucket)); got != before+1 {
		t.Fatalf("a refused erase deleted objects: %d left of %d", got, before+1)
	}
	out, err := s3backerOut(t, "y\n", append(flags, "--erase", bucket)...)
	if err != nil || !strings.Contains(out, fmt.Sprintf("erased %d blocks", before)) {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	if keys := bucketKeys(t, gw, bucket); !slices.Equal(keys, []string{"other/keep-me"}) {
		t.Fatalf("after erase the bucket holds %v", keys)
	}
}
