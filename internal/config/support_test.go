package config

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckImplemented(t *testing.T) {
	dir := t.TempDir()
	cf := writeFile(t, dir, "ok.conf", "--size=1g\n")
	ok := [][]string{
		{"b", "/m"},
		{"--test", "--test-delays", "--test-discard", "--test-errors", "--size=1m", "/d", "/m"},
		{"--size=1g", "--blockSize=4k", "--prefix=p/", "--blockHashPrefix", "--readOnly", "--force",
			"--noAutoDetect", "--debug", "--quiet", "-f", "-d", "b", "/m"},
		{"--nbd", "b/sub", "/dev/nbd0"},
		{"--configFile=" + cf, "-F", cf, "-o", "configFile=" + cf, "b", "/m"},
		{"-o", "size=1g,readOnly", "b", "/m"},
		{"--encrypt=AES-256-CBC", "--compress=zstd", "--compress-level=5", "--password=x", "--keyLength=48", "b", "/m"},
		{"--encrypt", "--passwordFile=/pw", "--defaultContentEncoding=deflate", "b", "/m"},
		{"--compress=9", "b", "/m"},
	}
	// With NBD, FUSE-only settings (say from a shared config file) are ignored.
	fuse := writeFile(t, dir, "fuse.conf", "-o\nallow_other\n-s\n--filename=x\n--statsFilename=y\n")
	ok = append(ok, []string{"--nbd", "--configFile=" + fuse, "b", "/dev/nbd0"})
	for _, args := range ok {
		if err := mustParse(t, args...).CheckImplemented(); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}

	notYet := []struct {
		args  []string
		lines []string
	}{
		{[]string{"--blockCacheFile=/c", "b", "/m"}, []string{"--blockCacheFile: not supported yet"}},
		{[]string{"-o", "blockCacheFile=/c", "b", "/m"}, []string{"--blockCacheFile: not supported yet"}},
		{[]string{"-s", "-o", "allow_other", "-o", "uid=0,size=1g", "b", "/m"},
			[]string{"-s: not supported yet", "-o allow_other,uid=0: FUSE mount options are not supported yet"}},
		{[]string{"--nbd", "--nbd-flag=x", "b", "/dev/nbd0"}, []string{"--nbd-flag: not supported yet"}},
		// Setting a default value explicitly still counts as using the flag.
		{[]string{"--md5CacheSize=0", "b", "/m"}, []string{"--md5CacheSize: not supported yet"}},
		{[]string{"--filename=x", "--directIO", "b", "/m"}, []string{"--filename: not supported yet", "--directIO: not supported yet"}},
	}
	for _, tt := range notYet {
		err := mustParse(t, tt.args...).CheckImplemented()
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("%q: %v, want ErrNotSupported", tt.args, err)
			continue
		}
		if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(tt.lines, "|") {
			t.Errorf("%q:\n got %q\nwant %q", tt.args, got, tt.lines)
		}
	}
	// Every name in the implemented set is a real flag (or a short one).
	for name := range implemented {
		if _, ok := LookupFlag(name); !ok && name != "-f" && name != "-d" && name != "-s" && name != "-o" {
			t.Errorf("implemented lists unknown flag %q", name)
		}
	}
}
