package vm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The guest runs Debian's kernel: its nbd driver is a module (nbd.ko),
// which this machine's own kernel lacks. The package is fetched once with
// apt-get into a cache directory ($S3BACKER_VM_CACHE, else the user cache
// directory) and unpacked there.

const kernelMeta = "linux-image-amd64" // depends on the current linux-image-X-amd64

// debianKernel is an unpacked kernel package.
type debianKernel struct {
	root    string // where the package is unpacked
	release string // uname -r, e.g. 6.1.0-56-amd64
}

func (k debianKernel) vmlinuz() string {
	return filepath.Join(k.root, "boot", "vmlinuz-"+k.release)
}

func (k debianKernel) modulesDir() string {
	return filepath.Join(k.root, "lib", "modules", k.release, "kernel")
}

func cacheDir() (string, error) {
	if d := os.Getenv("S3BACKER_VM_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "s3backer-go", "vm"), nil
}

// kernelPackage names the package linux-image-amd64 depends on.
func kernelPackage() (string, error) {
	out, err := exec.Command("apt-cache", "depends", kernelMeta).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w", kernelMeta, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image package (run apt-get update)", kernelMeta)
}

// fetchKernel returns the unpacked kernel, downloading it on first use.
func fetchKernel(t *testing.T) debianKernel {
	t.Helper()
	for _, tool := range []string{"apt-cache", "apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: the guest kernel comes from Debian's packages", tool)
		}
	}
	pkg, err := kernelPackage()
	if err != nil {
		t.Fatal(err)
	}
	cache, err := cacheDir()
	if err != nil {
		t.Fatal(err)
	}
	k := debianKernel{
		root:    filepath.Join(cache, pkg),
		release: strings.TrimPrefix(pkg, "linux-image-"),
	}
	if _, err := os.Stat(filepath.Join(k.root, ".complete")); err == nil {
		return k
	}
	t.Logf("fetching %s into %s (once)", pkg, cache)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(cache, ".fetch-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	// As root apt-get would hand the download to its _apt user, who
	// cannot write into a private cache: keep it in this process.
	dl := exec.Command("apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		t.Fatalf("apt-get download %s: %v\n%s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download %s left %d .deb files", pkg, len(debs))
	}
	unpacked := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], unpacked).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(unpacked, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Another test process may have won the race: theirs is as good.
	if err := os.Rename(unpacked, k.root); err != nil && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(filepath.Join(k.root, ".complete")); serr != nil {
			t.Fatalf("install the kernel in the cache: %v", err)
		}
	}
	if _, err := os.Stat(k.vmlinuz()); err != nil {
		t.Fatalf("kernel package without its kernel: %v", err)
	}
	return k
}
