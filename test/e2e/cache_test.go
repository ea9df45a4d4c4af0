package e2e

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/testenv/faultproxy"
	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// The block cache in front of S3, counted at a proxy: a block rewritten
// 100 times inside the write delay is PUT once; a cold 64 MiB region read
// twice costs one GET per block; everything acknowledged before a FLUSH is
// in the bucket when the FLUSH returns.
func TestBlockCacheRequestCounts(t *testing.T) {
	need(t, "nbdsh", "nbdcopy")
	gw := versitygw.Shared(t)
	p := faultproxy.Start(t, gw.URL)
	bucket := gw.NewBucket(t)
	const blocks = 256 // 64 MiB of 256 KiB blocks
	flags := []string{"--size=64M", "--blockSize=256k", "--blockCacheSize=300", "--blockCacheWriteDelay=60000"}

	s := s3fStart(t, gw, p, bucket, flags...)
	p.ResetCounts()
	s3fNbdsh(t, s, `
for i in range(100):
    h.pwrite(bytes([i + 1]) * 262144, 5 * 262144)
h.flush()
`)
	s3fExpect(t, p, "100 rewrites of one block, then FLUSH", map[faultproxy.Kind]int64{faultproxy.KindPut: 1})
	in, _ := randomFile(t, 64<<20)
	run(t, "nbdcopy", "--flush", in, s.URI)
	// randomFile leaves 2 MiB (8 blocks) of zeroes, which are deleted.
	c := p.Counts().Received.ByKind
	if c[faultproxy.KindPut] != blocks-8 {
		t.Fatalf("after the FLUSH %d PUTs, want %d", c[faultproxy.KindPut], blocks-8)
	}
	s.stop(syscall.SIGTERM)

	s = s3fStart(t, gw, p, bucket, flags...)
	p.ResetCounts()
	for i := 0; i < 2; i++ {
		run(t, "nbdcopy", "--no-extents", s.URI, "null:")
	}
	s3fExpect(t, p, "reading 64 MiB twice from a cold cache", map[faultproxy.Kind]int64{faultproxy.KindGetObject: blocks})
	s.stop(syscall.SIGTERM)
}

// S3 unreachable at stop: the stop reports how many blocks are not written
// back, gives up after --maxRetryPause, exits non-zero and leaves the
// 'already mounted' flag in place (the data is not all stored).
func TestStopWithS3Unreachable(t *testing.T) {
	need(t, "nbdsh")
	gw := versitygw.Shared(t)
	p := faultproxy.Start(t, gw.URL)
	bucket := gw.NewBucket(t)
	s := s3fStart(t, gw, p, bucket, "--size=4M", "--blockSize=64k", "--blockCacheWriteDelay=60000",
		"--initialRetryPause=10", "--maxRetryPause=500", "--timeout=2")
	s3fNbdsh(t, s, `
for b in range(3):
    h.pwrite(bytes([b + 1]) * 65536, b * 65536)
`)
	p.SetFaults(faultproxy.Faults{SlowDown: 1})
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err == nil {
			t.Fatalf("exit 0 although nothing could be written back:\n%s", s.logText())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit after SIGTERM with S3 unreachable:\n%s", s.logText())
	}
	if !strings.Contains(s.logText(), "3 blocks not written back") {
		t.Errorf("the log does not say how many blocks were lost:\n%s", s.logText())
	}
	p.SetFaults(faultproxy.Faults{})
	if !slices.Contains(bucketKeys(t, gw, bucket), "s3backer-mounted") {
		t.Error("the 'already mounted' flag was removed although data was not stored")
	}
}
