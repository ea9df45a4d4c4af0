package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigFileBasics(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "a.conf", strings.Join([]string{
		"# comment",
		"",
		"   --size=1g   ",
		"\t--blockSize=64k\r",
		"  # indented comment",
		"--prefix=my prefix/", // internal spaces are part of the argument
		"-o",
		"allow_other,uid=0",
		"-f",
		"",
	}, "\n"))
	for _, form := range [][]string{{"--configFile=" + f}, {"-F", f}, {"-o", "configFile=" + f}, {"-oconfigFile=" + f}} {
		args := append(slices.Clone(form), "b", "/m")
		c := mustParse(t, args...)
		if c.Size != 1<<30 || c.BlockSize != 64<<10 || c.Prefix != "my prefix/" || !c.Foreground {
			t.Errorf("%q: %d %d %q %v", form, c.Size, c.BlockSize, c.Prefix, c.Foreground)
		}
		if !slices.Equal(c.FuseOptions, []string{"allow_other", "uid=0"}) {
			t.Errorf("%q: FuseOptions %q", form, c.FuseOptions)
		}
		if !c.IsSet("configFile") {
			t.Errorf("%q: IsSet(configFile) false", form)
		}
		st := c.Settings()
		if st[0].Name != "configFile" || st[0].Value != f || st[1].Name != "size" || st[1].Where != f+":3" {
			t.Errorf("%q: Settings %+v", form, st)
		}
	}
}

// Arguments are spliced in place: what follows the file overrides it, and
// an -o group is split around configFile=.
func TestConfigFileInPlace(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "a.conf", "--size=1g\n--timeout=5\n")
	c := mustParse(t, "--size=2g", "--configFile="+f, "--timeout=7", "b", "/m")
	if c.Size != 1<<30 || c.Timeout != 7*time.Second {
		t.Errorf("size %d timeout %v", c.Size, c.Timeout)
	}
	c = mustParse(t, "-o", "allow_other,size=4g,configFile="+f+",timeout=9,uid=0", "b", "/m")
	if c.Size != 1<<30 || c.Timeout != 9*time.Second || !slices.Equal(c.FuseOptions, []string{"allow_other", "uid=0"}) {
		t.Errorf("size %d timeout %v fuse %q", c.Size, c.Timeout, c.FuseOptions)
	}
}

// A config file may hold the operands too, as s3backer splices it into argv.
func TestConfigFileOperands(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "all.conf", "--size=1g\nmybucket/disk\n/mnt/point\n")
	c := mustParse(t, "-F", f)
	if c.Bucket != "mybucket" || c.Prefix != "disk/" || c.Target != "/mnt/point" {
		t.Errorf("%q %q %q", c.Bucket, c.Prefix, c.Target)
	}
	g := writeFile(t, dir, "bucket.conf", "mybucket\n")
	c = mustParse(t, "-F", g, "/mnt")
	if c.Bucket != "mybucket" || c.Target != "/mnt" {
		t.Errorf("%q %q", c.Bucket, c.Target)
	}
	_, err := Parse([]string{"-F", f, "extra"})
	wantErr(t, "operand after a file with both", err, `unexpected extra operand "extra"`)
	// "--" in a file makes the rest operands.
	h := writeFile(t, dir, "dd.conf", "--\n-bucket\n")
	c = mustParse(t, "-F", h, "-mnt")
	if c.Bucket != "-bucket" || c.Target != "-mnt" {
		t.Errorf("after -- in a file: %q %q", c.Bucket, c.Target)
	}
}

func TestConfigFileNesting(t *testing.T) {
	dir := t.TempDir()
	inner := writeFile(t, dir, "inner.conf", "--blockSize=1m\n")
	mid := writeFile(t, dir, "mid.conf", "-F\n"+inner+"\n--size=1t\n")
	outer := writeFile(t, dir, "outer.conf", "-o\nconfigFile="+mid+"\n--debug\n")
	c := mustParse(t, "--configFile="+outer, "b", "/m")
	if c.BlockSize != 1<<20 || c.Size != 1<<40 || !c.Debug {
		t.Errorf("%d %d %v", c.BlockSize, c.Size, c.Debug)
	}
	// The same file twice, one after the other, is not a loop.
	c = mustParse(t, "-F", inner, "-F", inner, "b", "/m")
	if c.BlockSize != 1<<20 {
		t.Error(c.BlockSize)
	}

	// Depth limit without a loop: a chain of 101 distinct files.
	next := ""
	for i := maxConfigDepth; i >= 0; i-- {
		content := "--debug\n"
		if next != "" {
			content = "--configFile=" + next + "\n"
		}
		next = writeFile(t, dir, fmt.Sprintf("chain%03d.conf", i), content)
	}
	_, err := Parse([]string{"-F", next, "b", "/m"})
	wantErr(t, "deep nesting", err, "nested more than 100 deep")
}

func TestConfigFileLoop(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.conf")
	b := writeFile(t, dir, "b.conf", "--configFile="+a+"\n")
	writeFile(t, dir, "a.conf", "--debug\n-F\n"+b+"\n")
	_, err := Parse([]string{"-F", a, "x", "/m"})
	wantErr(t, "loop", err, "config file loop", a+" -> "+b+" -> "+a, b+":1")

	self := writeFile(t, dir, "self.conf", "-o\nallow_other,configFile=self.conf\n")
	t.Chdir(dir) // relative names are relative to the working directory, as in s3backer
	_, err = Parse([]string{"--configFile=self.conf", "x", "/m"})
	wantErr(t, "self loop", err, "config file loop", "self.conf -> self.conf")
	_ = self

	// A symlink to a file on the chain is the same file.
	if err := os.Symlink(a, filepath.Join(dir, "link.conf")); err != nil {
		t.Skip(err)
	}
	writeFile(t, dir, "b.conf", "--configFile=link.conf\n")
	_, err = Parse([]string{"-F", a, "x", "/m"})
	wantErr(t, "symlink loop", err, "config file loop")
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.conf")
	nbd := writeFile(t, dir, "nbd.conf", "--size=1g\n--nbd\n")
	nbdFlag := writeFile(t, dir, "nbdflag.conf", "\n--nbd-flag=x\n")
	bad := writeFile(t, dir, "bad.conf", "--size=1g\n\n--blockSize=banana\n")
	unknown := writeFile(t, dir, "unknown.conf", "--blokSize=4k\n")
	nested := writeFile(t, dir, "nested.conf", "# x\n-F\n"+missing+"\n")
	dangling := writeFile(t, dir, "dangling.conf", "--debug\n-o\n")

	tests := []struct {
		args  []string
		wants []string
	}{
		{[]string{"--configFile=" + missing, "b", "/m"}, []string{"--configFile=" + missing, "no such file"}},
		{[]string{"-F", missing, "b", "/m"}, []string{"-F " + missing, "no such file"}},
		{[]string{"-o", "configFile=" + missing, "b", "/m"}, []string{"-o configFile=" + missing, "no such file"}},
		{[]string{"--configFile=", "b", "/m"}, []string{"--configFile=", "empty file name"}},
		{[]string{"--configFile=" + dir, "b", "/m"}, []string{"is a directory"}},
		{[]string{"-F", nbd, "b", "/m"}, []string{nbd + ":2", "--nbd is not allowed in a config file"}},
		{[]string{"--nbd", "--configFile=" + nbd, "b", "/dev/nbd0"}, []string{"--nbd is not allowed in a config file"}},
		{[]string{"-F", nbdFlag, "b", "/m"}, []string{nbdFlag + ":2", "--nbd-flag=x", "only allowed on the command line"}},
		{[]string{"-F", bad, "b", "/m"}, []string{bad + ":3", "--blockSize=banana", "invalid size"}},
		{[]string{"-F", unknown, "b", "/m"}, []string{unknown + ":1", "unknown flag --blokSize", "did you mean --blockSize?"}},
		{[]string{"-F", nested, "b", "/m"}, []string{nested + ":2", "-F " + missing, "no such file"}},
		{[]string{"-F", dangling, "b", "/m"}, []string{dangling + ":2", "-o requires an option list"}},
	}
	for _, tt := range tests {
		_, err := Parse(tt.args)
		wantErr(t, strings.Join(tt.args, " "), err, tt.wants...)
	}
}

func TestConfigFileWithNBD(t *testing.T) {
	// In NBD mode a config file may hold single-dash FUSE flags (s3backer's
	// plugin ignores them) and --boolean=true is not accepted there.
	dir := t.TempDir()
	f := writeFile(t, dir, "fuse.conf", "-o\nallow_other\n-s\n--size=1g\n")
	c := mustParse(t, "--nbd", "--configFile="+f, "b", "/dev/nbd0")
	if c.Size != 1<<30 || !slices.Equal(c.FuseOptions, []string{"allow_other"}) {
		t.Errorf("%d %q", c.Size, c.FuseOptions)
	}
	g := writeFile(t, dir, "true.conf", "--readOnly=true\n")
	_, err := Parse([]string{"--nbd", "--configFile=" + g, "b", "/dev/nbd0"})
	wantErr(t, "=true in a file", err, g+":1", "--readOnly=true", "takes no value")
}

func TestConfigFileHelp(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]Action{"--size=1g\n--help\n": ActionHelp, "-?\n": ActionHelp,
		"-h\n": ActionHelp, "-v\n": ActionVersion, "--version\n--help\n": ActionVersion} {
		f := writeFile(t, dir, "h.conf", content)
		if c := mustParse(t, "-F", f); c.Action != want {
			t.Errorf("%q: Action = %v, want %v", content, c.Action, want)
		}
	}
}

func TestConfigFileWarningLocation(t *testing.T) {
	f := writeFile(t, t.TempDir(), "w.conf", "\n-o\nallow_other,blocksize=4k\n")
	c := mustParse(t, "-F", f, "b", "/m")
	if !hasWarning(c, f+":2: -o blocksize=4k: passed to FUSE as a mount option; did you mean blockSize?") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

// The options file of s3backer's NBD documentation parses, in FUSE and NBD
// mode, and gives the values it says.
func TestRealOptionsConf(t *testing.T) {
	const conf = "testdata/s3backer-options.conf"
	for _, args := range [][]string{
		{"--configFile=" + conf, "mybucket", "/mnt"},
		{"--nbd", "--configFile=" + conf, "mybucket", "/dev/nbd0"},
		{"-o", "configFile=" + conf, "mybucket", "/mnt"},
	} {
		c := mustParse(t, args...)
		checks := []struct {
			name      string
			got, want any
		}{
			{"Size", c.Size, int64(1 << 40)},
			{"BlockSize", c.BlockSize, int64(256 << 10)},
			{"AccessFile", c.AccessFile, "/home/archie/.s3b_passwd"},
			{"ListBlocks", c.ListBlocks, true},
			{"ListBlocksThreads", c.ListBlocksThreads, 50},
			{"SSL", c.SSL, true},
			{"Encrypt", c.Encrypt, "AES-128-CBC"},
			{"Compress", c.Compress, "deflate"},
			{"PasswordFile", c.PasswordFile, "/home/archie/.s3b_key"},
			{"BlockCacheSize", c.BlockCacheSize, 20000},
			{"BlockCacheFile", c.BlockCacheFile, "/home/archie/.s3b_cache"},
			{"BlockCacheWriteDelay", c.BlockCacheWriteDelay, 15 * time.Second},
			{"BlockCacheThreads", c.BlockCacheThreads, 4},
			{"BlockCacheRecoverDirtyBlocks", c.BlockCacheRecoverDirtyBlocks, true},
			{"BlockCacheNumProtected", c.BlockCacheNumProtected, 1000},
			{"Timeout", c.Timeout, 90 * time.Second},
			{"ResolvedBaseURL", c.ResolvedBaseURL(), "https://s3.amazonaws.com/"},
		}
		for _, ch := range checks {
			if ch.got != ch.want {
				t.Errorf("%q: %s = %v, want %v", args, ch.name, ch.got, ch.want)
			}
		}
		if len(c.Warnings) != 0 {
			t.Errorf("%q: warnings %q", args, c.Warnings)
		}
		// Geometry: 1t / 256k = 4M blocks.
		if _, err := c.Finish(0, 0); err != nil || c.NumBlocks() != 1<<22 {
			t.Errorf("%q: Finish: %v, %d blocks", args, err, c.NumBlocks())
		}

		// Every feature it uses is implemented.
		if err := c.CheckImplemented(); err != nil {
			t.Fatalf("%q: CheckImplemented = %v", args, err)
		}
	}
}
