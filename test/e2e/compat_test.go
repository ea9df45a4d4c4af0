package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// cS3backer mounts Debian's C s3backer (1.5.4, FUSE) in --test mode over
// dir; see cMount.
func cS3backer(t *testing.T, dir string, flags ...string) (string, func()) {
	t.Helper()
	return cMount(t, dir, append([]string{"--test"}, flags...)...)
}

// cMount mounts Debian's C s3backer (1.5.4, FUSE) on BUCKET (or directory)
// and returns the path of its disk file and a function that unmounts and
// waits until the process has written everything and exited (1.5.4 writes
// back only at unmount, and umount returns before it is done).
func cMount(t *testing.T, bucket string, flags ...string) (string, func()) {
	t.Helper()
	need(t, "s3backer", "fusermount")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse on this machine")
	}
	mnt := t.TempDir()
	args := append([]string{"-f"}, flags...)
	args = append(args, bucket, mnt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, "/usr/bin/s3backer", args...)
	cmd.Env = testEnv(t)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	file := filepath.Join(mnt, "file")
	waitFor(t, "the C s3backer mount", 30*time.Second, func() bool {
		select {
		case err := <-exited:
			exited <- err
			return true
		default:
		}
		_, err := os.Stat(file)
		return err == nil
	})
	select {
	case err := <-exited:
		cancel()
		t.Fatalf("C s3backer exited: %v\n%s", err, logs.String())
	default:
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		defer cancel()
		if out, err := exec.Command("fusermount", "-u", mnt).CombinedOutput(); err != nil {
			t.Fatalf("fusermount -u: %v %s", err, out)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("C s3backer: %v\n%s", err, logs.String())
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("C s3backer did not exit after unmount\n%s", logs.String())
		}
	}
	t.Cleanup(func() {
		if !stopped {
			_ = exec.Command("fusermount", "-u", "-z", mnt).Run()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			cancel()
		}
	})
	return file, stop
}

// The C s3backer and ours read each other's --test directories, with and
// without --blockHashPrefix and a prefix.
func TestCompatWithCS3backer(t *testing.T) {
	need(t, "nbdcopy")
	const size = 1 << 20
	for _, c := range []struct {
		name  string
		flags []string
		// Debian's 1.5.4 writes test-mode blocks with the hash prefix but
		// reads them without it (strace shows it opening "disk-00000000"),
		// so it cannot read a hash-prefixed directory back, not even its
		// own; 2.x fixed that. The names it writes are still checked.
		cReads bool
	}{
		{"plain", []string{"--blockSize=4k", "--size=1m"}, true},
		{"prefix", []string{"--blockSize=8k", "--size=1m", "--prefix=disk-"}, true},
		{"hash", []string{"--blockSize=8k", "--size=1m", "--blockHashPrefix", "--prefix=disk-"}, false},
	} {
		flags := c.flags
		t.Run(c.name, func(t *testing.T) {
			data := make([]byte, size)
			if _, err := rand.Read(data[:300000]); err != nil {
				t.Fatal(err)
			}
			copy(data[700000:], data[:100000]) // a middle stretch of zeroes
			// C writes, we read.
			dir := t.TempDir()
			file, stop := cS3backer(t, dir, flags...)
			if err := os.WriteFile(file, data, 0); err != nil {
				t.Fatal(err)
			}
			stop()
			s := startServer(t, dir, false, flags...)
			out := filepath.Join(t.TempDir(), "out")
			run(t, "nbdcopy", s.URI, out)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
				t.Fatal("data written by the C s3backer reads back differently through ours")
			}
			s.stop(syscall.SIGTERM)

			// We write, C reads.
			dir2 := t.TempDir()
			in := filepath.Join(t.TempDir(), "in")
			if err := os.WriteFile(in, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s = startServer(t, dir2, false, flags...)
			run(t, "nbdcopy", in, s.URI)
			s.stop(syscall.SIGTERM)
			// Same file names on both sides.
			if a, b := blockFiles(t, dir), blockFiles(t, dir2); strings.Join(a, ",") != strings.Join(b, ",") {
				t.Fatalf("block files differ:\nC:  %v\nGo: %v", a, b)
			}
			if !c.cReads {
				return
			}
			file, stop = cS3backer(t, dir2, append([]string{"--readOnly"}, flags...)...)
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			stop()
			if !bytes.Equal(got, data) {
				t.Fatal("data written by us reads back differently through the C s3backer")
			}
		})
	}
}

// The C s3backer and ours share a bucket on a real S3 server: each reads
// what the other wrote (size auto-detected from the other's block 0), and
// each refuses to mount while the other has it mounted.
func TestCompatS3WithCS3backer(t *testing.T) {
	need(t, "nbdcopy")
	gw := versitygw.Shared(t)
	const size = 1 << 20
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"plain", []string{"--blockSize=4k"}},
		{"hash-prefix", []string{"--blockSize=8k", "--blockHashPrefix", "--prefix=disk1/"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bucket := gw.NewBucket(t)
			flags := append(s3Flags(gw, ""), c.flags...)
			data := make([]byte, size)
			if _, err := rand.Read(data[:400000]); err != nil {
				t.Fatal(err)
			}
			copy(data[800000:], data[:100000])

			// C writes; ours refuses to start meanwhile.
			file, stop := cMount(t, bucket, append(flags, "--size=1m")...)
			if err := os.WriteFile(file, data, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := tryStart(t, false, flags, bucket); err == nil || !strings.Contains(err.Error(), "already mounted") {
				t.Fatalf("ours started while C had the disk mounted: %v", err)
			}
			stop()
			s := startWith(t, false, flags, bucket) // geometry from C's block 0
			out := filepath.Join(t.TempDir(), "out")
			run(t, "nbdcopy", s.URI, out)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
				t.Fatal("data written by the C s3backer reads back differently through ours")
			}
			// C refuses while ours runs (and, were it to mount, it would
			// stay in the foreground until the timeout kills it).
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			cmd := exec.CommandContext(cctx, "/usr/bin/s3backer", append(append([]string{"-f"}, flags...), bucket, t.TempDir())...)
			cmd.Env = testEnv(t)
			out2, err := cmd.CombinedOutput()
			timedOut := cctx.Err() != nil
			cancel()
			if err == nil || timedOut || !strings.Contains(string(out2), "already mounted") {
				t.Fatalf("C was not refused while ours had the disk (%v): %s", err, out2)
			}

			// Ours writes new data; C reads it with the geometry from our block 0.
			if _, err := rand.Read(data[100000:500000]); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(t.TempDir(), "in")
			if err := os.WriteFile(in, data, 0o600); err != nil {
				t.Fatal(err)
			}
			run(t, "nbdcopy", "--flush", in, s.URI)
			s.stop(syscall.SIGTERM)
			file, stop = cMount(t, bucket, append(flags, "--readOnly")...)
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			stop()
			if !bytes.Equal(got, data) {
				t.Fatal("data written by us reads back differently through the C s3backer")
			}
		})
	}
}
