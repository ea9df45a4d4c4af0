// Package vm runs s3backer against a real kernel NBD device: this
// machine's kernel has no nbd driver, so a small VM boots Debian's kernel
// (which has nbd.ko) under qemu's TCG, with a busybox initramfs holding our
// static binary. The guest's init script (testdata/init.sh) does what a
// user of s3backer's NBD mode does, step by step, and reports on the
// serial console, which is this test's log.
package vm

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

func TestMain(m *testing.M) { versitygw.Main(m) }

// vmLimit bounds one VM run; a run takes one to three minutes.
const vmLimit = 8 * time.Minute

// The steps of init.sh, in order, that every run must pass.
var s3backerSteps = []string{
	"modules", "attach", "mkfs", "mount", "write", "fstrim", "umount",
	"stop", "detached", "reattach", "verify", "fsck", "stop2", "detached",
}

const diskArgs = "--size=256M --blockSize=64k"

func TestKernelNBD(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM (a few minutes under TCG)")
	}
	img := buildImage(t)

	// The --test directory inside the guest, with no network at all; the
	// nbddev package's kernel tests run in the same boot.
	t.Run("test-mode", func(t *testing.T) {
		initrd, err := img.withRunConf(map[string]string{
			"MODE":     "test",
			"S3B_ARGS": "--test " + diskArgs + " /tmp/s3b",
		})
		if err != nil {
			t.Fatal(err)
		}
		c := bootVM(t, img, initrd, vmLimit, "-nic", "none")
		steps := append(s3backerSteps, "takeover", "stop3", "detached")
		attaches, stops := 4, 3
		if img.nbdkit {
			// Attached through nbdkit and our plugin (--nbd-flag).
			steps = append(steps, "nbdkit-attach", "nbdkit-io", "nbdkit-stop")
			attaches, stops = 5, 4
		} else {
			t.Log("no nbdkit in the guest (see above): --nbd-flag not tried")
		}
		checkSteps(t, c, append(steps, "nbddev-tests"))
		checkDaemonLogs(t, c, attaches, stops)
		if img.nbdkit && c.countLines("s3backer", "via=nbdkit") != 1 {
			t.Error("the attach through nbdkit did not log via=nbdkit")
		}
		if c.countLines("s3backer", "taking over a device left attached") != 1 {
			t.Error("the restart after SIGKILL did not log taking the device over")
		}
		for _, name := range []string{
			"TestKernelAttachNetlink", "TestKernelAttachIoctl",
			"TestKernelExternalDetachNetlink", "TestKernelExternalDetachIoctl",
		} {
			if c.countLines("--- PASS: "+name) != 1 {
				t.Errorf("nbddev's %s did not pass in the guest", name)
			}
		}
	})

	// A bucket on versitygw on this machine's loopback: the guest's only
	// network is a guestfwd rule to that one port.
	t.Run("s3", func(t *testing.T) {
		if _, err := exec.LookPath("socat"); err != nil {
			t.Skip("socat not found (scripts/install-vm-deps.sh installs it)")
		}
		gw := versitygw.Shared(t)
		bucket := gw.NewBucket(t)
		initrd, err := img.withRunConf(map[string]string{
			"MODE": "s3",
			"S3B_ARGS": "--baseURL=http://10.0.2.100/ --accessId=" + gw.AccessKey + " --accessKey=" + gw.SecretKey +
				" " + diskArgs + " " + bucket,
		})
		if err != nil {
			t.Fatal(err)
		}
		c := bootVM(t, img, initrd, vmLimit,
			"-nic", "user,model=e1000,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:"+gw.Addr)
		checkSteps(t, c, s3backerSteps)
		checkDaemonLogs(t, c, 2, 2)
		// The guest cannot list the bucket; here the trim shows in what
		// is left: the 16 MiB file written, deleted and trimmed was 256
		// blocks on its own.
		objs, _ := filepath.Glob(filepath.Join(gw.Dir(), bucket, "*"))
		if len(objs) == 0 || len(objs) >= 256 {
			t.Fatalf("bucket %s holds %d objects after the run, want some and fewer than 256", bucket, len(objs))
		}
		t.Logf("bucket %s holds %d objects", bucket, len(objs))
	})
}

// checkDaemonLogs asserts what the daemons logged through syslog: each
// attach went through netlink (the guest kernel has it), and each SIGTERM
// stopped cleanly (flushed, detached, flag cleared).
func checkDaemonLogs(t *testing.T, c *console, attaches, stops int) {
	t.Helper()
	if n := c.countLines("s3backer", "nbd: device attached", "method=netlink"); n != attaches {
		t.Errorf("%d netlink attaches logged, want %d", n, attaches)
	}
	if n := c.countLines("s3backer", "stopped cleanly"); n != stops {
		t.Errorf("%d clean stops logged, want %d", n, stops)
	}
}
