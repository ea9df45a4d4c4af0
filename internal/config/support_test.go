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
		{"--nbd", "--nbd-flag=--verbose", "--nbd-param=x=y", "b", "/dev/nbd0"},
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

	// FUSE mode's own flags and options (the FUSE front end checks the
	// -o mount options itself).
	ok = [][]string{
		{"--filename=x", "--statsFilename=", "--fileMode=0644", "--directIO", "-s", "b", "/m"},
		{"-o", "allow_other,uid=0,size=1g,kernel_cache", "-o", "fileMode=0600", "b", "/m"},
	}
	for _, args := range ok {
		if err := mustParse(t, args...).CheckImplemented(); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}

	// Every flag works today; the check itself still reports one that
	// does not, as it will for the next one parsed before it is built.
	for _, name := range []string{"fileMode", "filename", "directIO", "-s", "-o"} {
		delete(implemented, name)
		t.Cleanup(func() { implemented[name] = true })
	}
	notYet := []struct {
		args  []string
		lines []string
	}{
		{[]string{"--fileMode=0600", "b", "/m"}, []string{"--fileMode: not supported yet"}},
		{[]string{"-o", "fileMode=0600", "b", "/m"}, []string{"--fileMode: not supported yet"}},
		{[]string{"-s", "-o", "allow_other", "-o", "uid=0,size=1g", "b", "/m"},
			[]string{"-s: not supported yet", "-o allow_other,uid=0: FUSE mount options are not supported yet"}},
		// Setting a default value explicitly still counts as using the flag.
		{[]string{"--filename=file", "b", "/m"}, []string{"--filename: not supported yet"}},
		{[]string{"--filename=x", "--directIO", "b", "/m"}, []string{"--filename: not supported yet", "--directIO: not supported yet"}},
		// With NBD, FUSE-only settings are still ignored.
		{[]string{"--nbd", "--filename=x", "--directIO", "b", "/dev/nbd0"}, nil},
	}
	for _, tt := range notYet {
		err := mustParse(t, tt.args...).CheckImplemented()
		if tt.lines == nil {
			if err != nil {
				t.Errorf("%q: %v", tt.args, err)
			}
			continue
		}
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
