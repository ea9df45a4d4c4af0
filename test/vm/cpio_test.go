package vm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// cpioWriter writes a "newc" cpio archive, the format the kernel unpacks
// as an initramfs. Parent directories are added as needed (the kernel
// does not create them).
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIO(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, dirs: map[string]bool{"": true, ".": true}}
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

func (c *cpioWriter) entry(name string, mode uint32, data []byte, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name != "TRAILER!!!" {
		c.parents(name)
	}
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	buf := append([]byte(hdr), name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	buf = append(buf, data...)
	buf = pad4(buf)
	_, c.err = c.w.Write(buf)
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (c *cpioWriter) parents(name string) {
	dir := path.Dir(name)
	if c.dirs[dir] {
		return
	}
	c.dirs[dir] = true
	c.entry(dir, modeDir|0o755, nil, 0, 0)
}

func (c *cpioWriter) Dir(name string) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if !c.dirs[name] {
		c.dirs[name] = true
		c.entry(name, modeDir|0o755, nil, 0, 0)
	}
}

func (c *cpioWriter) File(name string, perm uint32, data []byte) {
	c.entry(name, modeFile|perm, data, 0, 0)
}

func (c *cpioWriter) Symlink(name, target string) {
	c.entry(name, modeSymlink|0o777, []byte(target), 0, 0)
}

func (c *cpioWriter) CharDev(name string, major, minor uint32) {
	c.entry(name, modeCharDev|0o600, nil, major, minor)
}

// Close writes the trailer; it does not close the underlying writer.
func (c *cpioWriter) Close() error {
	c.entry("TRAILER!!!", 0, nil, 0, 0)
	return c.err
}

// The archive unpacks with busybox's cpio as the kernel would: every entry
// with its type, mode, content and parents.
func TestCPIOUnpacks(t *testing.T) {
	if ok, err := isStatic(busybox); err != nil || !ok {
		t.Skipf("no static busybox at %s (package busybox-static)", busybox)
	}
	var buf bytes.Buffer
	c := newCPIO(&buf)
	c.Dir("etc")
	c.File("bin/tool", 0o755, []byte("#!/bin/sh\n"))
	c.File("/deep/er/file", 0o644, []byte("odd length"))
	c.Symlink("bin/sh", "tool")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(busybox, "cpio", "-i", "-d")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "deep/er/file")); err != nil || string(b) != "odd length" {
		t.Fatalf("deep/er/file: %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "bin/tool")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("bin/tool: %v, %v", st, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "tool" {
		t.Fatalf("bin/sh -> %q, %v", l, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "etc")); err != nil || !st.IsDir() {
		t.Fatalf("etc: %v, %v", st, err)
	}
}
