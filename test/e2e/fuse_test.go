package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// fuseMount is one running `s3backer -f ... BUCKET MOUNTPOINT` process.
type fuseMount struct {
	*proc
	Dir  string // the mount point
	File string // the disk file
}

// needFUSE skips without the kernel's FUSE device (CI has it).
func needFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
}

// isMounted reports whether dir is a mount point now.
func isMounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// startFUSE mounts BUCKET on a fresh directory with `s3backer -f FLAGS`
// and returns once it logs that it is mounted. However the test ends, the
// mount is lazily unmounted and the process killed.
func startFUSE(t *testing.T, flags []string, bucket string) *fuseMount {
	t.Helper()
	m, err := tryStartFUSE(t, flags, bucket, filepath.Join(t.TempDir(), "mnt"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func tryStartFUSE(t *testing.T, flags []string, bucket, dir string) (*fuseMount, error) {
	t.Helper()
	needFUSE(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"-f"}, flags...)
	cmd := exec.Command(bin, append(args, bucket, dir)...)
	cmd.Env = testEnv(t)
	onLine, mounted := seen("msg=mounted")
	p, err := startProc(t, cmd, onLine)
	if err != nil {
		return nil, err
	}
	m := &fuseMount{proc: p, Dir: dir, File: filepath.Join(dir, "file")}
	// Runs before startProc's kill (cleanups run last first).
	t.Cleanup(func() {
		if isMounted(dir) {
			_, _ = runOut("umount", "-l", dir)
		}
	})
	select {
	case <-mounted:
		return m, nil
	case err := <-m.done:
		m.done <- err
		return nil, fmt.Errorf("s3backer exited before mounting (%v):\n%s", err, m.logText())
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("s3backer did not mount\n%s", m.logText())
	}
}

// exited waits for the process to end by itself (after an unmount) and
// requires a clean exit.
func (m *fuseMount) exited(why string) {
	m.t.Helper()
	m.proc.exited(why)
	if isMounted(m.Dir) {
		m.t.Fatalf("%s still mounted after s3backer exited", m.Dir)
	}
}

// stop sends sig and requires a clean exit with the mount gone.
func (m *fuseMount) stop(sig syscall.Signal) {
	m.t.Helper()
	if err := m.cmd.Process.Signal(sig); err != nil {
		m.t.Fatal(err)
	}
	m.exited(sig.String())
}

// loopDevice attaches file to a free loop device, detached when the test
// ends if the test has not done so.
func loopDevice(t *testing.T, file string, extra ...string) string {
	t.Helper()
	need(t, "losetup")
	dev := strings.TrimSpace(run(t, "losetup", append(append([]string{"--find", "--show"}, extra...), file)...))
	t.Cleanup(func() { _, _ = runOut("losetup", "-d", dev) })
	return dev
}

// mountExt4 mounts dev on a fresh directory, with mount options opts if
// any, lazily unmounted at the end.
func mountExt4(t *testing.T, dev string, opts ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ext4")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"-t", "ext4", dev, dir}
	if len(opts) > 0 {
		args = append(args, "-o", strings.Join(opts, ","))
	}
	run(t, "mount", args...)
	t.Cleanup(func() {
		if isMounted(dir) {
			_, _ = runOut("umount", "-l", dir)
		}
	})
	return dir
}

var statsLineRE = regexp.MustCompile(`^(\S+)\s+(\S.*)$`)

// readStats parses the stats file: one "name value" per line; the numeric
// values are returned.
func readStats(t *testing.T, path string) map[string]float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		m := statsLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("stats line %q is not NAME VALUE:\n%s", line, data)
		}
		v := strings.TrimSuffix(strings.Fields(m[2])[0], "%")
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[m[1]] = f
		}
	}
	if len(out) == 0 {
		t.Fatalf("stats file has no numeric counter:\n%s", data)
	}
	return out
}

// moved lists the counters that differ between two readings.
func moved(a, b map[string]float64) []string {
	var names []string
	for k, v := range b {
		if a[k] != v {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

// writeRandom writes n random bytes to path and returns their checksum.
func writeRandom(t *testing.T, path string, n int) [32]byte {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// verifyExt4 checks the ext4 file system on m's disk file with e2fsck -f,
// then mounts it (with mount options opts) and checks that each file of
// sums has the SHA-256 sums gives it.
func verifyExt4(t *testing.T, m *fuseMount, sums map[string][32]byte, opts ...string) {
	t.Helper()
	dev := loopDevice(t, m.File)
	if out, err := runOut("e2fsck", "-f", "-n", dev); err != nil {
		t.Fatalf("e2fsck -f: %v\n%s", err, out)
	}
	fsDir := mountExt4(t, dev, opts...)
	for name, want := range sums {
		data, err := os.ReadFile(filepath.Join(fsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(data) != want {
			t.Fatalf("%s reads back differently", name)
		}
	}
	run(t, "umount", fsDir)
	run(t, "losetup", "-d", dev)
}

// fusermount is the FUSE unmount helper installed: fusermount3 or the
// FUSE 2 one (both unmount any FUSE mount).
func fusermount(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("neither fusermount3 nor fusermount installed (scripts/install-test-deps.sh installs fuse)")
	return ""
}

// ext4 on a loop device on the FUSE file on versitygw: files in, fstrim
// (whose discards delete objects), stop, start again with the geometry
// read from the bucket, e2fsck clean, files out. Stops by SIGTERM, by
// umount and by fusermount -u, each followed by an immediate remount
// that must not meet a stale 'already mounted' flag.
func TestFUSEExt4(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck", "fstrim", "losetup")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := s3Flags(gw, "")
	m := startFUSE(t, append(flags, "--size=64M", "--blockSize=64k"), bucket)

	ents, err := os.ReadDir(m.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].Name() != "file" || ents[1].Name() != "stats" {
		t.Fatalf("mount holds %v, want file and stats", ents)
	}
	if st, err := os.Stat(m.File); err != nil || st.Size() != 64<<20 || st.Mode().Perm() != 0o600 {
		t.Fatalf("disk file: %v, %v", st, err)
	}
	statsPath := filepath.Join(m.Dir, "stats")
	before := readStats(t, statsPath)

	dev := loopDevice(t, m.File)
	run(t, "mkfs.ext4", "-q", "-F", dev)
	fsDir := mountExt4(t, dev)
	sums := map[string][32]byte{}
	for i, n := range []int{1 << 20, 3<<20 + 12345, 17, 5 << 20} {
		name := fmt.Sprintf("f%d", i)
		sums[name] = writeRandom(t, filepath.Join(fsDir, name), n)
	}
	// A file deleted before fstrim: its blocks are discarded.
	writeRandom(t, filepath.Join(fsDir, "gone"), 8<<20)
	run(t, "sync", "-f", fsDir)
	if err := os.Remove(filepath.Join(fsDir, "gone")); err != nil {
		t.Fatal(err)
	}
	run(t, "sync", "-f", fsDir)
	keysBefore := len(bucketKeys(t, gw, bucket))
	run(t, "fstrim", fsDir)
	run(t, "umount", fsDir)
	run(t, "losetup", "-d", dev) // closing the file flushes: the deletes are done
	if keysAfter := len(bucketKeys(t, gw, bucket)); keysAfter > keysBefore-100 {
		t.Fatalf("fstrim of an 8 MiB file deleted %d objects, want at least 100 of its 128 blocks", keysBefore-keysAfter)
	}

	after := readStats(t, statsPath)
	if len(moved(before, after)) == 0 {
		t.Fatalf("no counter of the stats file moved: %v", after)
	}
	if err := os.Remove(statsPath); err != nil {
		t.Fatalf("unlink of the stats file: %v", err)
	}
	reset := readStats(t, statsPath)
	if m := moved(after, reset); len(m) == 0 {
		t.Fatalf("unlinking the stats file changed nothing: %v", reset)
	}
	m.stop(syscall.SIGTERM)

	// Geometry from block 0, and the flag cleared: started at once.
	m = startFUSE(t, flags, bucket)
	verifyExt4(t, m, sums)
	run(t, "umount", m.Dir)
	m.exited("umount")

	m = startFUSE(t, flags, bucket)
	verifyExt4(t, m, sums)
	run(t, fusermount(t), "-u", m.Dir)
	m.exited("fusermount -u")

	// No flag left behind by any of the stops.
	for _, k := range bucketKeys(t, gw, bucket) {
		if strings.HasSuffix(k, "s3backer-mounted") {
			t.Fatalf("the 'already mounted' flag %s is still set", k)
		}
	}
}

// A stop signal while a loop device holds the file open: the mount is
// detached, the device keeps working until it lets go, then the disk is
// flushed and the process exits cleanly.
func TestFUSEStopWhileBusy(t *testing.T) {
	need(t, "losetup")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := s3Flags(gw, "")
	m := startFUSE(t, append(flags, "--size=16M", "--blockSize=64k", "--blockCacheWriteDelay=60000"), bucket)
	dev := loopDevice(t, m.File)
	data := make([]byte, 4<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mount to be detached", 30*time.Second, func() bool { return !isMounted(m.Dir) })
	// Still served through the loop device.
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatalf("write through the loop device after the stop signal: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-m.done:
		t.Fatalf("s3backer exited (%v) while the loop device still holds the file\n%s", err, m.logText())
	default:
	}
	run(t, "losetup", "-d", dev)
	m.exited("SIGTERM and the loop device's detach")
	if !strings.Contains(m.logText(), "detaching it") {
		t.Errorf("no word of the busy mount in the log:\n%s", m.logText())
	}

	m = startFUSE(t, flags, bucket)
	got := make([]byte, len(data))
	f, err = os.Open(m.File)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data written after the stop signal was lost")
	}
	f.Close()
	m.stop(syscall.SIGINT)
}

// fio's verify workload, several jobs at once, through a loop device on
// the FUSE file; then verified again after a restart.
func TestFUSEFio(t *testing.T) {
	need(t, "fio", "losetup")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := s3Flags(gw, "")
	m := startFUSE(t, append(flags, "--size=32M", "--blockSize=16k"), bucket)
	job := func(dev string, extra ...string) []string {
		return append([]string{
			"--name=verify", "--filename=" + dev, "--ioengine=libaio", "--direct=1", "--iodepth=8",
			"--rw=randwrite", "--bs=4k", "--bsrange=4k-64k", "--numjobs=4", "--size=8M", "--offset_increment=8M",
			"--verify=crc32c", "--verify_fatal=1", "--randrepeat=1", "--group_reporting",
			"--verify_state_save=0", // else fio leaves *-verify.state files in the package directory
		}, extra...)
	}
	dev := loopDevice(t, m.File)
	run(t, "fio", job(dev)...)
	run(t, "losetup", "-d", dev)
	m.stop(syscall.SIGTERM)

	m = startFUSE(t, flags, bucket)
	dev = loopDevice(t, m.File, "--read-only")
	run(t, "fio", job(dev, "--verify_only")...)
	run(t, "losetup", "-d", dev)
	m.stop(syscall.SIGTERM)
}

// One disk, two front ends: what FUSE wrote, NBD reads, and the reverse.
func TestFUSEAndNBDSameDisk(t *testing.T) {
	need(t, "nbdcopy")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	flags := s3Flags(gw, "")
	const size = 8 << 20

	viaFUSE, sum := randomFile(t, size)
	m := startFUSE(t, append(flags, "--size=8M", "--blockSize=64k"), bucket)
	run(t, "dd", "if="+viaFUSE, "of="+m.File, "bs=1M", "conv=notrunc,fsync", "status=none")
	m.stop(syscall.SIGTERM)

	s := startWith(t, false, flags, bucket)
	out := filepath.Join(t.TempDir(), "out")
	run(t, "nbdcopy", s.URI, out)
	if fileSum(t, out) != sum {
		t.Fatal("NBD reads something else than FUSE wrote")
	}
	viaNBD, sum := randomFile(t, size)
	run(t, "nbdcopy", "--flush", viaNBD, s.URI)
	s.stop(syscall.SIGTERM)

	m = startFUSE(t, append(flags, "--readOnly"), bucket)
	if fileSum(t, m.File) != sum {
		t.Fatal("FUSE reads something else than NBD wrote")
	}
	if st, _ := os.Stat(m.File); st.Mode().Perm() != 0o400 {
		t.Errorf("read-only disk file mode %v, want 0400", st.Mode())
	}
	if _, err := os.OpenFile(m.File, os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("opening a read-only disk for writing: %v, want EROFS", err)
	}
	m.stop(syscall.SIGINT)
}

// Daemonized like s3backer: the command returns once mounted, saying so;
// an umount stops the daemon, which clears the flag on its way out.
func TestFUSEDaemon(t *testing.T) {
	needFUSE(t)
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if isMounted(dir) {
			_, _ = runOut("umount", "-l", dir)
		}
	})
	args := append(s3Flags(gw, ""), "--size=4M", "--blockSize=64k", "--filename=disk", "--statsFilename=", "--fileMode=0644", "-o", "uid=1234,noatime")
	out, err := s3backerOut(t, "", append(args, bucket, dir)...)
	if err != nil {
		t.Fatalf("s3backer: %v\n%s", err, out)
	}
	if want := "s3backer: mounting " + bucket + " on " + dir + " and daemonizing\n"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	if !isMounted(dir) {
		t.Fatal("not mounted when the command returned")
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "disk" {
		t.Fatalf("mount holds %v (%v), want the disk file alone", ents, err)
	}
	st, err := os.Stat(filepath.Join(dir, "disk"))
	if err != nil || st.Mode().Perm() != 0o644 || st.Sys().(*syscall.Stat_t).Uid != 1234 {
		t.Fatalf("disk file %v (%v): want mode 0644 and owner 1234", st, err)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if !regexp.MustCompile(regexp.QuoteMeta(" "+dir+" fuse.s3backer ") + `\S*noatime`).Match(mounts) {
		t.Errorf("-o noatime not applied:\n%s", mounts)
	}
	if err := os.WriteFile(filepath.Join(dir, "disk"), []byte("daemon"), 0); err != nil {
		t.Fatal(err)
	}
	run(t, "umount", dir)
	waitFor(t, "the daemon to clear the mount flag", 30*time.Second, func() bool {
		for _, k := range bucketKeys(t, gw, bucket) {
			if strings.HasSuffix(k, "s3backer-mounted") {
				return false
			}
		}
		return true
	})
	m := startFUSE(t, append(s3Flags(gw, ""), "--filename=disk"), bucket)
	got := make([]byte, 6)
	f, err := os.Open(filepath.Join(m.Dir, "disk"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadFull(f, got)
	f.Close()
	if err != nil || string(got) != "daemon" {
		t.Fatalf("read %q (%v), want what the daemon wrote", got, err)
	}
	m.stop(syscall.SIGHUP)
}

// Bad FUSE options and mount points fail at once with a clear line and
// the usage exit status, before any bucket is touched.
func TestFUSEBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "bogus_option", dir, dir}, "s3backer: -o bogus_option: unknown FUSE option\n"},
		{[]string{"-o", "uid=nobody", dir, dir}, "s3backer: -o uid=nobody: want a whole number from 0 to 4294967294\n"},
		{[]string{dir, filepath.Join(dir, "missing")}, "s3backer: mount point: stat " + filepath.Join(dir, "missing") + ": no such file or directory\n"},
	} {
		out, err := s3backerOut(t, "", append([]string{"--test", "--size=1M", "-f"}, c.args...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || out != c.want {
			t.Errorf("%q: %v, output %q; want exit 2 and %q", c.args, err, out, c.want)
		}
	}
}

// SEEK_DATA and SEEK_HOLE on the disk file skip the blocks not stored, so
// sparse-aware copies (cp --sparse, qemu-img) read only what exists.
func TestFUSESeekData(t *testing.T) {
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)
	m := startFUSE(t, append(s3Flags(gw, ""), "--size=8M", "--blockSize=64k", "--listBlocks"), bucket)
	// Until the survey ends, blocks not written here are of unknown
	// presence, which lseek reports as data.
	waitFor(t, "the survey", 30*time.Second, func() bool {
		return strings.Contains(m.logText(), "survey of stored blocks complete")
	})
	f, err := os.OpenFile(m.File, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{7}, 64<<10), 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA); err != nil || got != 1<<20 {
		t.Errorf("SEEK_DATA from 0: %d, %v; want %d", got, err, 1<<20)
	}
	if got, err := unix.Seek(int(f.Fd()), 1<<20, unix.SEEK_HOLE); err != nil || got != 1<<20+64<<10 {
		t.Errorf("SEEK_HOLE from the block: %d, %v; want %d", got, err, 1<<20+64<<10)
	}
	f.Close()
	m.stop(syscall.SIGTERM)
}
