package fusefs

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// DefaultOptions are the FUSE options s3backer 2.x passes unless told
// otherwise (its s3b_config.c), in -o form. A later -o of the user's
// overrides them; fsname is set by the caller (s3backer uses the disk's
// description, e.g. "http://host/bucket/prefix").
var DefaultOptions = []string{
	"kernel_cache",
	"allow_other",
	"subtype=s3backer",
	"entry_timeout=31536000",
	"negative_timeout=31536000",
	"attr_timeout=0", // the stats file's length changes
	"default_permissions",
	"nodev",
	"nosuid",
}

// Settings are what a list of FUSE -o options decides: how to mount, and
// how the file system answers.
type Settings struct {
	// KeepCache lets the kernel keep the disk file's pages between opens
	// (kernel_cache, auto_cache): only this process changes the file.
	KeepCache bool
	// DirectIO bypasses the kernel's page cache for the disk file.
	DirectIO bool
	// UID, GID and Umask override the owner and permissions of every
	// file, as libfuse's uid=, gid= and umask= do.
	UID, GID, Umask *uint32
	// Timeouts of the kernel's dentry and attribute caches.
	EntryTimeout, NegativeTimeout, AttrTimeout time.Duration
	// DenyOthers answers EACCES to users other than the owner and root
	// (allow_root: the kernel sees allow_other).
	DenyOthers bool
	// Debug logs every FUSE request (-o debug, like -d).
	Debug bool

	// FsName and Subtype name the mount in /proc/mounts and df.
	FsName, Subtype string
	// Flags are the mount(2) flags (ro, nosuid, nodev, noatime, ...).
	Flags uintptr
	// KernelOptions are the options the kernel's fuse driver reads
	// (default_permissions, max_read=, SELinux contexts).
	KernelOptions []string
	// AllowOther lets users other than the mounting one in.
	AllowOther bool

	MaxWrite, MaxReadAhead, MaxBackground, CongestionThreshold int
	SyncRead                                                   bool
	AsyncDIO                                                   bool
}

// option is one known FUSE -o option.
type option struct {
	value bool // takes =VALUE
	// apply gets the value and the option as written.
	apply func(s *Settings, value, raw string) error
}

// flag sets or clears a mount(2) flag.
func flag(f uintptr, set bool) option {
	return option{apply: func(s *Settings, _, _ string) error {
		if set {
			s.Flags |= f
		} else {
			s.Flags &^= f
		}
		return nil
	}}
}

// noEffect accepts an option of libfuse that means nothing here (go-fuse
// manages threads and splicing itself, inode numbers are always ours),
// so that an existing s3backer command line or fstab entry still mounts.
func noEffect(value bool) option {
	return option{value: value, apply: func(*Settings, string, string) error { return nil }}
}

func set(f func(s *Settings)) option {
	return option{apply: func(s *Settings, _, _ string) error { f(s); return nil }}
}

func kernel(value bool) option {
	return option{value: value, apply: func(s *Settings, _, raw string) error {
		// Only the last of a repeated option counts.
		name, _, _ := strings.Cut(raw, "=")
		s.KernelOptions = removeOption(s.KernelOptions, name)
		s.KernelOptions = append(s.KernelOptions, raw)
		return nil
	}}
}

func removeOption(opts []string, name string) []string {
	out := opts[:0]
	for _, o := range opts {
		if n, _, _ := strings.Cut(o, "="); n != name {
			out = append(out, o)
		}
	}
	return out
}

func uintOpt(max uint64, f func(s *Settings, n uint64)) option {
	return option{value: true, apply: func(s *Settings, v, _ string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > max {
			return fmt.Errorf("want a whole number from 0 to %d", max)
		}
		f(s, n)
		return nil
	}}
}

func idOpt(f func(s *Settings, id *uint32)) option {
	return uintOpt(math.MaxUint32-1, func(s *Settings, n uint64) { id := uint32(n); f(s, &id) })
}

func secondsOpt(f func(s *Settings, d time.Duration)) option {
	return option{value: true, apply: func(s *Settings, v, _ string) error {
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil || sec < 0 || math.IsInf(sec, 0) || math.IsNaN(sec) {
			return errors.New("want a number of seconds")
		}
		f(s, time.Duration(min(sec, float64(math.MaxInt64/int64(time.Second)))*float64(time.Second)))
		return nil
	}}
}

// options are libfuse 3's -o options (high-level, low-level and mount),
// each either implemented, passed to the kernel, or accepted without effect.
var options = map[string]option{
	// Caching and I/O.
	"kernel_cache": set(func(s *Settings) { s.KeepCache = true }),
	// auto_cache keeps pages while the file is unchanged; it changes only
	// through us, so that is kernel_cache.
	"auto_cache":       set(func(s *Settings) { s.KeepCache = true }),
	"noauto_cache":     noEffect(false),
	"direct_io":        set(func(s *Settings) { s.DirectIO = true }),
	"entry_timeout":    secondsOpt(func(s *Settings, d time.Duration) { s.EntryTimeout = d }),
	"negative_timeout": secondsOpt(func(s *Settings, d time.Duration) { s.NegativeTimeout = d }),
	"attr_timeout":     secondsOpt(func(s *Settings, d time.Duration) { s.AttrTimeout = d }),
	"ac_attr_timeout":  noEffect(true),
	"max_write":        uintOpt(math.MaxInt32, func(s *Settings, n uint64) { s.MaxWrite = int(n) }),
	"max_readahead": uintOpt(math.MaxInt32, func(s *Settings, n uint64) {
		// go-fuse reads 0 as "the kernel's default"; 1 byte rounds
		// down to no read-ahead pages in the kernel.
		s.MaxReadAhead = max(int(n), 1)
	}),
	"max_background":       uintOpt(math.MaxUint16, func(s *Settings, n uint64) { s.MaxBackground = int(n) }),
	"congestion_threshold": uintOpt(math.MaxUint16, func(s *Settings, n uint64) { s.CongestionThreshold = int(n) }),
	"sync_read":            set(func(s *Settings) { s.SyncRead = true }),
	"async_read":           set(func(s *Settings) { s.SyncRead = false }),
	"async_dio":            set(func(s *Settings) { s.AsyncDIO = true }),
	"no_async_dio":         set(func(s *Settings) { s.AsyncDIO = false }),

	// Ownership and access.
	"uid":                 idOpt(func(s *Settings, id *uint32) { s.UID = id }),
	"gid":                 idOpt(func(s *Settings, id *uint32) { s.GID = id }),
	"umask":               {value: true, apply: parseUmask},
	"allow_other":         set(func(s *Settings) { s.AllowOther, s.DenyOthers = true, false }),
	"allow_root":          set(func(s *Settings) { s.AllowOther, s.DenyOthers = true, true }),
	"default_permissions": kernel(false),

	// Names.
	"fsname":  {value: true, apply: func(s *Settings, v, _ string) error { s.FsName = v; return nil }},
	"subtype": {value: true, apply: func(s *Settings, v, _ string) error { s.Subtype = v; return nil }},
	"debug":   set(func(s *Settings) { s.Debug = true }),

	// Read by the kernel's fuse driver.
	"max_read":    kernel(true),
	"context":     kernel(true),
	"fscontext":   kernel(true),
	"defcontext":  kernel(true),
	"rootcontext": kernel(true),

	// mount(2) flags.
	"ro": flag(syscall.MS_RDONLY, true), "rw": flag(syscall.MS_RDONLY, false),
	"nosuid": flag(syscall.MS_NOSUID, true), "suid": flag(syscall.MS_NOSUID, false),
	"nodev": flag(syscall.MS_NODEV, true), "dev": flag(syscall.MS_NODEV, false),
	"noexec": flag(syscall.MS_NOEXEC, true), "exec": flag(syscall.MS_NOEXEC, false),
	"sync": flag(syscall.MS_SYNCHRONOUS, true), "async": flag(syscall.MS_SYNCHRONOUS, false),
	"dirsync": flag(syscall.MS_DIRSYNC, true),
	"noatime": flag(syscall.MS_NOATIME, true), "atime": flag(syscall.MS_NOATIME, false),
	"nodiratime": flag(syscall.MS_NODIRATIME, true), "diratime": flag(syscall.MS_NODIRATIME, false),
	"relatime": flag(syscall.MS_RELATIME, true), "norelatime": flag(syscall.MS_RELATIME, false),
	"strictatime": flag(syscall.MS_STRICTATIME, true), "nostrictatime": flag(syscall.MS_STRICTATIME, false),
	"lazytime": flag(unixMSLazytime, true), "nolazytime": flag(unixMSLazytime, false),

	// libfuse options with nothing to do here.
	"use_ino": noEffect(false), "readdir_ino": noEffect(false), "hard_remove": noEffect(false),
	"noforget": noEffect(false), "remember": noEffect(true), "nullpath_ok": noEffect(false),
	"no_rofd_flush": noEffect(false), "intr": noEffect(false), "intr_signal": noEffect(true),
	"max_idle_threads": noEffect(true), "max_threads": noEffect(true), "clone_fd": noEffect(false),
	"splice_read": noEffect(false), "no_splice_read": noEffect(false),
	"splice_write": noEffect(false), "no_splice_write": noEffect(false),
	"splice_move": noEffect(false), "no_splice_move": noEffect(false),
	"auto_inval_data": noEffect(false), "no_auto_inval_data": noEffect(false),
	"time_gran": noEffect(true), "parallel_direct_writes": noEffect(false),
	"atomic_o_trunc": noEffect(false), "no_remote_lock": noEffect(false),
	"no_remote_flock": noEffect(false), "no_remote_posix_lock": noEffect(false),
	// FUSE 2 options that FUSE 3 dropped: big writes are always on, and
	// mounting on a non-empty directory is always allowed.
	"big_writes": noEffect(false), "nonempty": noEffect(false),
}

// unsupported are real libfuse options this program does not offer, with
// the reason, so the error says more than "unknown".
var unsupported = map[string]string{
	"auto_unmount":    "not supported (s3backer unmounts the file system itself when it stops)",
	"blkdev":          "not supported (the disk is served as a file, not a block device)",
	"blksize":         "not supported (only with blkdev)",
	"writeback_cache": "not supported (the kernel would report write errors only at fsync)",
	"modules":         "not supported (no FUSE modules)",
	"user":            "not supported",
}

// unixMSLazytime is MS_LAZYTIME, which package syscall lacks.
const unixMSLazytime = 1 << 25

func parseUmask(s *Settings, v, _ string) error {
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n > 0o777 {
		return errors.New("want an octal mode from 0 to 777")
	}
	m := uint32(n)
	s.Umask = &m
	return nil
}

// ParseOptions applies DefaultOptions and then opts (the user's -o FUSE
// options, in order: a later one wins), and returns one error line per
// unknown or malformed option.
func ParseOptions(opts []string) (Settings, error) {
	s := Settings{AsyncDIO: true}
	_ = s.apply(DefaultOptions)
	return s, s.apply(opts)
}

func (s *Settings) apply(opts []string) error {
	var errs []error
	for _, o := range opts {
		if o == "" {
			continue
		}
		name, value, hasValue := strings.Cut(o, "=")
		// fstab's x-* options are for mount helpers, never for the driver.
		if strings.HasPrefix(name, "x-") {
			continue
		}
		if why, ok := unsupported[name]; ok {
			errs = append(errs, fmt.Errorf("-o %s: %s", o, why))
			continue
		}
		opt, ok := options[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("-o %s: unknown FUSE option", o))
			continue
		case opt.value && !hasValue:
			errs = append(errs, fmt.Errorf("-o %s: requires a value (-o %s=VALUE)", o, name))
			continue
		case !opt.value && hasValue:
			errs = append(errs, fmt.Errorf("-o %s: takes no value", o))
			continue
		}
		if err := opt.apply(s, value, o); err != nil {
			errs = append(errs, fmt.Errorf("-o %s: %w", o, err))
		}
	}
	return errors.Join(errs...)
}

// mountOptions is the go-fuse configuration of these settings. As root
// the file system is mounted with mount(2) directly, flags and all; as
// another user through fusermount, which takes the same options by name.
func (s *Settings) mountOptions(singleThreaded bool, blockSize int) *fuse.MountOptions {
	mo := &fuse.MountOptions{
		AllowOther:          s.AllowOther,
		FsName:              s.FsName,
		Name:                s.Subtype,
		MaxWrite:            s.MaxWrite,
		MaxReadAhead:        s.MaxReadAhead,
		MaxBackground:       s.MaxBackground,
		CongestionThreshold: s.CongestionThreshold,
		SyncRead:            s.SyncRead,
		SingleThreaded:      singleThreaded,
		Debug:               s.Debug,
		DisableXAttrs:       true,
		DisableReadDirPlus:  true,
	}
	if mo.MaxWrite == 0 {
		// One request per block (at least 128 KiB, at most the kernel's
		// usual 1 MiB limit): a large direct read or write is then split
		// by the kernel into requests it sends in parallel (async direct
		// I/O), each a whole block, rather than one request the volume
		// fans out itself. Measured: 256 KiB blocks read a quarter
		// faster this way than with 1 MiB requests (bench/fuse.sh).
		mo.MaxWrite = min(max(blockSize, 128<<10), 1<<20)
	}
	if mo.MaxBackground == 0 {
		// Enough asynchronous requests (read-ahead, async direct I/O)
		// in flight to keep the storage below busy.
		mo.MaxBackground = 64
	}
	if s.AsyncDIO {
		mo.ExtraCapabilities |= fuse.CAP_ASYNC_DIO
	}
	if syscall.Geteuid() == 0 {
		mo.DirectMountStrict = true
		mo.DirectMountFlags = s.Flags | syscall.MS_MGC_VAL
		mo.Options = append(mo.Options, s.KernelOptions...)
		return mo
	}
	mo.Options = append(mo.Options, s.KernelOptions...)
	mo.Options = append(mo.Options, flagNames(s.Flags)...)
	return mo
}

// flagNames spells mount flags for fusermount, which mounts nosuid and
// nodev unless told suid or dev.
func flagNames(f uintptr) []string {
	var out []string
	if f&syscall.MS_NOSUID == 0 {
		out = append(out, "suid")
	}
	if f&syscall.MS_NODEV == 0 {
		out = append(out, "dev")
	}
	for _, n := range []struct {
		bit  uintptr
		name string
	}{
		{syscall.MS_RDONLY, "ro"}, {syscall.MS_NOEXEC, "noexec"}, {syscall.MS_SYNCHRONOUS, "sync"},
		{syscall.MS_DIRSYNC, "dirsync"}, {syscall.MS_NOATIME, "noatime"}, {syscall.MS_NODIRATIME, "nodiratime"},
		{syscall.MS_RELATIME, "relatime"}, {syscall.MS_STRICTATIME, "strictatime"}, {unixMSLazytime, "lazytime"},
	} {
		if f&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}
