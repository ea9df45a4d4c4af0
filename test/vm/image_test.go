package vm

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// guestImage is what the VM boots: Debian's kernel and an initramfs with a
// static busybox, our static binaries, e2fsprogs and the kernel modules.
type guestImage struct {
	kernel string
	initrd []byte // gzip-compressed newc cpio; more may be appended
	nbdkit bool   // nbdkit and our plugin are in it
}

const busybox = "/bin/busybox" // Debian's busybox-static

// isStatic reports whether an ELF executable needs no dynamic loader.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// requireTools skips the test when the machine lacks what the VM needs.
func requireTools(t *testing.T) {
	t.Helper()
	const hint = " (scripts/install-vm-deps.sh installs it)"
	for _, tool := range []string{"qemu-system-x86_64", "modinfo", "ldd", "mke2fs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found%s", tool, hint)
		}
	}
	if ok, err := isStatic(busybox); err != nil || !ok {
		t.Skipf("no static busybox at %s (package busybox-static)%s", busybox, hint)
	}
}

// goBuild builds a static binary of pkg (CGO_ENABLED=0): the guest has no
// libc for it. With test set it builds pkg's test binary.
func goBuild(t *testing.T, pkg, out string, test bool) {
	t.Helper()
	args := []string{"build", "-trimpath", "-o", out, pkg}
	if test {
		args = []string{"test", "-c", "-trimpath", "-o", out, pkg}
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// buildImage assembles the guest.
func buildImage(t *testing.T) *guestImage {
	t.Helper()
	requireTools(t)
	k := fetchKernel(t)
	tmp := t.TempDir()

	// S3BACKER_VM_BIN names a static s3backer built beforehand (bench/vm.sh
	// runs the same binary on the host); else it is built here.
	s3backer := os.Getenv("S3BACKER_VM_BIN")
	if s3backer == "" {
		s3backer = filepath.Join(tmp, "s3backer")
		goBuild(t, "github.com/s3backer-go/s3backer/cmd/s3backer", s3backer, false)
	} else if ok, err := isStatic(s3backer); err != nil || !ok {
		t.Fatalf("S3BACKER_VM_BIN=%s: not a static executable (%v)", s3backer, err)
	}
	nbddevTest := filepath.Join(tmp, "nbddev.test")
	goBuild(t, "github.com/s3backer-go/s3backer/internal/nbddev", nbddevTest, true)

	mods, err := resolveModules(k.modulesDir(), guestModules)
	if err != nil {
		t.Fatal(err)
	}
	initScript, err := os.ReadFile(filepath.Join("testdata", "init.sh"))
	if err != nil {
		t.Fatal(err)
	}
	guestScript, err := os.ReadFile(filepath.Join("testdata", "guest.sh"))
	if err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	c := newCPIO(zw)
	for _, d := range []string{"dev", "proc", "sys", "tmp", "mnt", "run", "etc", "bin", "sbin"} {
		c.Dir(d)
	}
	// The kernel opens it for init's standard streams before any mount.
	c.CharDev("dev/console", 5, 1)
	c.File("init", 0o755, initScript)
	c.File("guest.sh", 0o644, guestScript) // what init.sh and bench.sh share
	c.Symlink("bin/sh", "busybox")
	addFile := func(name, src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		c.File(name, 0o755, b)
	}
	addFile("bin/busybox", busybox)
	addFile("bin/s3backer", s3backer)
	addFile("bin/nbddev.test", nbddevTest)

	// e2fsprogs, with the shared libraries they load at their own paths.
	libs := map[string]bool{}
	addWithLibs := func(name, src string) {
		addFile(name, src)
		ls, err := sharedLibraries(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			libs[l] = true
		}
	}
	for _, tool := range []string{"mke2fs", "e2fsck"} {
		p, _ := exec.LookPath(tool)
		addWithLibs("sbin/"+tool, p)
	}
	// nbdkit and our plugin beside s3backer, where --nbd-flag finds it, so
	// that the guest attaches a disk through them too.
	nbdkit, plugin := nbdkitFiles(t, tmp)
	if plugin != "" {
		addWithLibs("bin/nbdkit", nbdkit)
		addWithLibs("bin/nbdkit-s3backer-plugin.so", plugin)
		addWithLibs("bin/libs3backer-nbdkit.so", filepath.Join(filepath.Dir(plugin), "libs3backer-nbdkit.so"))
	}
	for l := range libs {
		addFile(strings.TrimPrefix(l, "/"), l)
	}
	if b, err := os.ReadFile("/etc/mke2fs.conf"); err == nil {
		c.File("etc/mke2fs.conf", 0o644, b)
	}

	var list []string
	for _, m := range mods {
		name := filepath.Base(m)
		addFile("modules/"+name, filepath.Join(k.modulesDir(), m))
		list = append(list, name)
	}
	c.File("modules.list", 0o644, []byte(strings.Join(list, "\n")+"\n"))

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("guest: kernel %s, modules %s, initramfs %d KiB", k.release, strings.Join(list, " "), buf.Len()>>10)
	return &guestImage{kernel: k.vmlinuz(), initrd: buf.Bytes(), nbdkit: plugin != ""}
}

// withRunConf returns the initramfs with /run.conf added: the kernel
// unpacks concatenated archives in order.
func (g *guestImage) withRunConf(conf map[string]string) ([]byte, error) {
	var b strings.Builder
	for k, v := range conf {
		fmt.Fprintf(&b, "%s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	c := newCPIO(zw)
	c.File("run.conf", 0o644, []byte(b.String()))
	if err := c.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return append(append([]byte(nil), g.initrd...), buf.Bytes()...), nil
}

// nbdkitFiles returns nbdkit and our plugin for the guest: the plugin
// `make test` built ($S3BACKER_PLUGIN), or one built here. Without nbdkit
// or its plugin header the guest does without (and says so).
func nbdkitFiles(t *testing.T, tmp string) (nbdkit, plugin string) {
	t.Helper()
	nbdkit, err := exec.LookPath("nbdkit")
	if err != nil {
		t.Logf("no nbdkit on this machine: the guest does not attach through it (%v)", err)
		return "", ""
	}
	if p := os.Getenv("S3BACKER_PLUGIN"); p != "" {
		return nbdkit, p
	}
	if _, err := os.Stat("/usr/include/nbdkit-plugin.h"); err != nil {
		t.Logf("no nbdkit-plugin-dev: the guest does not attach through nbdkit (%v)", err)
		return "", ""
	}
	dir := filepath.Join(tmp, "plugin")
	if out, err := exec.Command("../../nbdkit/build.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("building the nbdkit plugin: %v\n%s", err, out)
	}
	return nbdkit, filepath.Join(dir, "nbdkit-s3backer-plugin.so")
}
