package fusefs

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseOptionsDefaults(t *testing.T) {
	s, err := ParseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	year := 31536000 * time.Second
	if !s.KeepCache || !s.AllowOther || s.DenyOthers || s.Subtype != "s3backer" || s.DirectIO ||
		s.EntryTimeout != year || s.NegativeTimeout != year || s.AttrTimeout != 0 ||
		s.Flags != syscall.MS_NODEV|syscall.MS_NOSUID || !slices.Equal(s.KernelOptions, []string{"default_permissions"}) ||
		!s.AsyncDIO || s.UID != nil || s.GID != nil || s.Umask != nil {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestParseOptionsOverrides(t *testing.T) {
	s, err := ParseOptions([]string{
		"uid=1000", "gid=100", "umask=027", "attr_timeout=1.5", "entry_timeout=0",
		"allow_root", "direct_io", "fsname=mydisk", "subtype=other", "dev", "noatime", "ro",
		"max_read=65536", "max_read=131072", "max_readahead=0", "max_write=65536", "sync_read",
		"no_async_dio", "x-systemd.automount", "big_writes", "nonempty", "use_ino", "debug",
	})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case *s.UID != 1000 || *s.GID != 100 || *s.Umask != 0o27:
		t.Errorf("uid/gid/umask: %d %d %o", *s.UID, *s.GID, *s.Umask)
	case s.AttrTimeout != 1500*time.Millisecond || s.EntryTimeout != 0:
		t.Errorf("timeouts: attr %v entry %v", s.AttrTimeout, s.EntryTimeout)
	case !s.AllowOther || !s.DenyOthers || !s.DirectIO || s.FsName != "mydisk" || s.Subtype != "other":
		t.Errorf("access and names: %+v", s)
	case s.Flags != syscall.MS_NOSUID|syscall.MS_NOATIME|syscall.MS_RDONLY:
		t.Errorf("flags %#x", s.Flags)
	case !slices.Equal(s.KernelOptions, []string{"default_permissions", "max_read=131072"}):
		t.Errorf("kernel options %q (the last max_read wins)", s.KernelOptions)
	case s.MaxReadAhead != 1 || s.MaxWrite != 65536 || !s.SyncRead || s.AsyncDIO || !s.Debug:
		t.Errorf("connection: %+v", s)
	}
	// allow_other after allow_root lets everyone in again.
	if s, _ := ParseOptions([]string{"allow_root", "allow_other"}); s.DenyOthers {
		t.Error("allow_other after allow_root still denies others")
	}
}

func TestParseOptionsErrors(t *testing.T) {
	_, err := ParseOptions([]string{"bogus", "uid=x", "kernel_cache=1", "umask", "auto_unmount", "umask=999", "attr_timeout=-1", "uid=0"})
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"-o bogus: unknown FUSE option",
		"-o uid=x: want a whole number from 0 to 4294967294",
		"-o kernel_cache=1: takes no value",
		"-o umask: requires a value (-o umask=VALUE)",
		"-o auto_unmount: not supported (s3backer unmounts the file system itself when it stops)",
		"-o umask=999: want an octal mode from 0 to 777",
		"-o attr_timeout=-1: want a number of seconds",
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Fatalf("errors:\n got %q\nwant %q", got, want)
	}
}

func TestMountOptions(t *testing.T) {
	s, err := ParseOptions([]string{"fsname=d", "noexec", "max_background=8"})
	if err != nil {
		t.Fatal(err)
	}
	mo := s.mountOptions(true, 256<<10)
	if !mo.SingleThreaded || mo.FsName != "d" || mo.Name != "s3backer" || !mo.AllowOther ||
		mo.MaxBackground != 8 || mo.MaxWrite != 256<<10 || !mo.DisableXAttrs {
		t.Fatalf("mount options: %+v", mo)
	}
	if syscall.Geteuid() == 0 {
		if !mo.DirectMountStrict || mo.DirectMountFlags&(syscall.MS_NOEXEC|syscall.MS_NOSUID|syscall.MS_NODEV) !=
			syscall.MS_NOEXEC|syscall.MS_NOSUID|syscall.MS_NODEV || !slices.Equal(mo.Options, []string{"default_permissions"}) {
			t.Fatalf("as root: flags %#x options %q", mo.DirectMountFlags, mo.Options)
		}
	}
	for bs, want := range map[int]int{4096: 128 << 10, 1 << 20: 1 << 20, 4 << 20: 1 << 20} {
		if got := s.mountOptions(false, bs).MaxWrite; got != want {
			t.Errorf("block size %d: max_write %d, want %d", bs, got, want)
		}
	}
	if got := flagNames(syscall.MS_NOEXEC | syscall.MS_NOSUID); !slices.Equal(got, []string{"dev", "noexec"}) {
		t.Fatalf("fusermount spelling: %q", got)
	}
}
