package config

import (
	"errors"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultsFUSE(t *testing.T) {
	c := mustParse(t, "mybucket", "/mnt/s3")
	checks := []struct {
		name      string
		got, want any
	}{
		{"Action", c.Action, ActionRun},
		{"Bucket", c.Bucket, "mybucket"},
		{"Prefix", c.Prefix, ""},
		{"Target", c.Target, "/mnt/s3"},
		{"AccessType", c.AccessType, "private"},
		{"AuthVersion", c.AuthVersion, "aws4"},
		{"Region", c.Region, "us-east-1"},
		{"BaseURL", c.BaseURL, ""},
		{"ResolvedBaseURL", c.ResolvedBaseURL(), "http://s3.amazonaws.com/"},
		{"UseVhost", c.UseVhost(), false},
		{"IPTOS", c.IPTOS, -1},
		{"Timeout", c.Timeout, 30 * time.Second},
		{"InitialRetryPause", c.InitialRetryPause, 200 * time.Millisecond},
		{"MaxRetryPause", c.MaxRetryPause, 30 * time.Second},
		{"BlockCacheSize", c.BlockCacheSize, 1000},
		{"BlockCacheThreads", c.BlockCacheThreads, 20},
		{"BlockCacheWriteDelay", c.BlockCacheWriteDelay, 250 * time.Millisecond},
		{"BlockCacheTimeout", c.BlockCacheTimeout, time.Duration(0)},
		{"BlockCacheMaxDirty", c.BlockCacheMaxDirty, 0},
		{"BlockCacheNumProtected", c.BlockCacheNumProtected, 0},
		{"ListBlocksThreads", c.ListBlocksThreads, 16},
		{"ReadAhead", c.ReadAhead, 4},
		{"ReadAheadTrigger", c.ReadAheadTrigger, 2},
		{"MD5CacheSize", c.MD5CacheSize, 0},
		{"MD5CacheTime", c.MD5CacheTime, time.Duration(0)},
		{"MinWriteDelay", c.MinWriteDelay, time.Duration(0)},
		{"StatsFileMirrorInterval", c.StatsFileMirrorInterval, time.Second},
		{"FileMode", c.FileMode, fs.FileMode(0o600)},
		{"Filename", c.Filename, "file"},
		{"StatsFilename", c.StatsFilename, "stats"},
		{"Size", c.Size, int64(0)},
		{"BlockSize", c.BlockSize, int64(0)},
		{"Compress", c.Compress, ""},
		{"Encrypt", c.Encrypt, ""},
		{"IsNBD", c.IsNBD(), false},
		{"IsFUSE", c.IsFUSE(), true},
		{"AutoDetect", c.AutoDetect(), true},
		{"Foreground", c.Foreground, false},
		{"Warnings", len(c.Warnings), 0},
		{"Settings", len(c.Settings()), 0},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if c.IsSet("blockSize") || c.IsSet("readAhead") {
		t.Error("IsSet true for a flag not given")
	}
}

func TestDefaultsNBD(t *testing.T) {
	c := mustParse(t, "--nbd", "mybucket", "/dev/nbd0")
	if !c.NBD || !c.IsNBD() || c.IsFUSE() || c.Target != "/dev/nbd0" {
		t.Errorf("NBD=%v IsNBD=%v IsFUSE=%v Target=%q", c.NBD, c.IsNBD(), c.IsFUSE(), c.Target)
	}
	// Unlike s3backer, which turns it off with --nbd ("the kernel already
	// reads ahead": 128 KiB, less than one block).
	if c.ReadAhead != 4 || c.ReadAheadTrigger != 2 {
		t.Errorf("NBD read-ahead defaults = %d/%d, want 4/2", c.ReadAhead, c.ReadAheadTrigger)
	}
	c = mustParse(t, "--nbd", "--readAhead=8", "--readAheadTrigger=3", "mybucket", "/dev/nbd0")
	if c.ReadAhead != 8 || c.ReadAheadTrigger != 3 {
		t.Errorf("explicit read-ahead with --nbd = %d/%d, want 8/3", c.ReadAhead, c.ReadAheadTrigger)
	}
	// readAhead=0 given explicitly in FUSE mode stays 0.
	c = mustParse(t, "--readAhead=0", "b", "/m")
	if c.ReadAhead != 0 || c.ReadAheadTrigger != 2 {
		t.Errorf("FUSE --readAhead=0: %d/%d", c.ReadAhead, c.ReadAheadTrigger)
	}
}

// TestFlagValues sets every flag and checks the field it lands in.
func TestFlagValues(t *testing.T) {
	b := []string{"bucket", "/mnt"}
	tests := []struct {
		args  []string
		check func(c *Config) bool
	}{
		{[]string{"--accessFile=/etc/pw"}, func(c *Config) bool { return c.AccessFile == "/etc/pw" }},
		{[]string{"--accessId=AKID"}, func(c *Config) bool { return c.AccessID == "AKID" }},
		{[]string{"--accessId="}, func(c *Config) bool { return c.AccessID == "" && c.IsSet("accessId") }},
		{[]string{"--accessKey=SECRET"}, func(c *Config) bool { return c.AccessKey == "SECRET" }},
		{[]string{"--accessKeyEnv=MYKEY"}, func(c *Config) bool { return c.AccessKeyEnv == "MYKEY" }},
		{[]string{"--accessType=public-read-write"}, func(c *Config) bool { return c.AccessType == "public-read-write" }},
		{[]string{"--accessEC2IAM=myrole"}, func(c *Config) bool { return c.AccessEC2IAM && c.AccessEC2IAMRole == "myrole" }},
		{[]string{"--accessEC2IAM"}, func(c *Config) bool { return c.AccessEC2IAM && c.AccessEC2IAMRole == "" }},
		{[]string{"--accessEC2IAM=r", "--accessEC2IAM-IMDSv2"}, func(c *Config) bool { return c.AccessEC2IAMIMDSv2 }},
		{[]string{"--authVersion=aws2"}, func(c *Config) bool { return c.AuthVersion == "aws2" }},
		{[]string{"--baseURL=http://127.0.0.1:9000/"}, func(c *Config) bool {
			return c.BaseURL == "http://127.0.0.1:9000/" && c.ResolvedBaseURL() == "http://127.0.0.1:9000/"
		}},
		{[]string{"--region=eu-west-1"}, func(c *Config) bool {
			return c.Region == "eu-west-1" && c.UseVhost() && c.ResolvedBaseURL() == "http://s3.eu-west-1.amazonaws.com/"
		}},
		{[]string{"--region=us-east-1", "--ssl"}, func(c *Config) bool {
			return c.UseVhost() && c.ResolvedBaseURL() == "https://s3.amazonaws.com/"
		}},
		{[]string{"--region=eu-west-1", "--no-vhost"}, func(c *Config) bool { return !c.UseVhost() }},
		{[]string{"--vhost"}, func(c *Config) bool { return c.Vhost && c.UseVhost() }},
		{[]string{"--vhost", "--no-vhost"}, func(c *Config) bool { return !c.UseVhost() }},
		{[]string{"--no-vhost", "--vhost"}, func(c *Config) bool { return c.UseVhost() }},
		{[]string{"--ssl"}, func(c *Config) bool { return c.SSL && c.ResolvedBaseURL() == "https://s3.amazonaws.com/" }},
		{[]string{"--cacert=/ca.pem"}, func(c *Config) bool { return c.CACert == "/ca.pem" }},
		{[]string{"--insecure"}, func(c *Config) bool { return c.Insecure }},
		{[]string{"--http11"}, func(c *Config) bool { return c.HTTP11 }},
		{[]string{"--noCurlCache"}, func(c *Config) bool { return c.NoCurlCache }},
		{[]string{"--ipTOS=lowdelay"}, func(c *Config) bool { return c.IPTOS == 0x10 }},
		{[]string{"--ipTOS=mincost"}, func(c *Config) bool { return c.IPTOS == 0x02 }},
		{[]string{"--ipTOS=0x20"}, func(c *Config) bool { return c.IPTOS == 0x20 }},
		{[]string{"--ipTOS=010"}, func(c *Config) bool { return c.IPTOS == 8 }},
		{[]string{"--ipTOS=255"}, func(c *Config) bool { return c.IPTOS == 255 }},
		{[]string{"--ipTOS=0"}, func(c *Config) bool { return c.IPTOS == 0 }},
		{[]string{"--timeout=90"}, func(c *Config) bool { return c.Timeout == 90*time.Second }},
		{[]string{"--initialRetryPause=50"}, func(c *Config) bool { return c.InitialRetryPause == 50*time.Millisecond }},
		{[]string{"--maxRetryPause=1000"}, func(c *Config) bool { return c.MaxRetryPause == time.Second }},
		{[]string{"--maxUploadSpeed=1m"}, func(c *Config) bool { return c.MaxUploadSpeed == 1<<20 }},
		{[]string{"--maxDownloadSpeed=800000"}, func(c *Config) bool { return c.MaxDownloadSpeed == 800000 }},
		{[]string{"--storageClass=DEEP_ARCHIVE"}, func(c *Config) bool { return c.StorageClass == "DEEP_ARCHIVE" }},
		{[]string{"--sse=AES256"}, func(c *Config) bool { return c.SSE == "AES256" }},
		{[]string{"--sse=aws:kms", "--sse-key-id=k1"}, func(c *Config) bool { return c.SSE == "aws:kms" && c.SSEKeyID == "k1" }},
		{[]string{"--prefix=disks/one-"}, func(c *Config) bool { return c.Prefix == "disks/one-" }},
		{[]string{"--blockHashPrefix"}, func(c *Config) bool { return c.BlockHashPrefix }},
		{[]string{"--blockSize=64k"}, func(c *Config) bool { return c.BlockSize == 64<<10 && c.IsSet("blockSize") }},
		{[]string{"--size=10g"}, func(c *Config) bool { return c.Size == 10<<30 && c.IsSet("size") }},
		{[]string{"--noAutoDetect", "--size=1m"}, func(c *Config) bool { return c.NoAutoDetect && !c.AutoDetect() }},
		{[]string{"--force"}, func(c *Config) bool { return c.Force }},
		{[]string{"--readOnly"}, func(c *Config) bool { return c.ReadOnly && c.FileMode == 0o400 }},
		{[]string{"--readOnly", "--fileMode=0640"}, func(c *Config) bool { return c.FileMode == 0o640 }},
		{[]string{"--compress"}, func(c *Config) bool { return c.Compress == "deflate" && c.CompressLevel == -1 }},
		{[]string{"--compress=9"}, func(c *Config) bool { return c.Compress == "deflate" && c.CompressLevel == 9 }},
		{[]string{"--compress=0"}, func(c *Config) bool { return c.Compress == "deflate" && c.CompressLevel == 0 }},
		{[]string{"--compress=-1"}, func(c *Config) bool { return c.Compress == "deflate" && c.CompressLevel == -1 }},
		{[]string{"--compress=ZSTD"}, func(c *Config) bool { return c.Compress == "zstd" && c.CompressLevel == 3 }},
		{[]string{"--compress=zstd", "--compress-level=19"}, func(c *Config) bool { return c.Compress == "zstd" && c.CompressLevel == 19 }},
		{[]string{"--compress-level=-5", "--compress=zstd"}, func(c *Config) bool { return c.Compress == "zstd" && c.CompressLevel == -5 }},
		{[]string{"--compress=deflate", "--compress-level=1"}, func(c *Config) bool { return c.Compress == "deflate" && c.CompressLevel == 1 }},
		{[]string{"--compress", "--compress-level=3"}, func(c *Config) bool { return c.Compress == "deflate" && c.CompressLevel == 3 }},
		{[]string{"--compress=zstd", "--compress"}, func(c *Config) bool { return c.Compress == "zstd" }},
		{[]string{"--encrypt"}, func(c *Config) bool {
			return c.Encrypt == "AES-128-CBC" && c.Compress == "deflate" && c.CompressLevel == -1
		}},
		{[]string{"--encrypt=aes-256-cbc"}, func(c *Config) bool { return c.Encrypt == "AES-256-CBC" }},
		{[]string{"--encrypt=aes-256-gcm"}, func(c *Config) bool {
			return c.Encrypt == "AES-256-GCM" && c.Compress == "deflate" && c.CompressLevel == -1
		}},
		{[]string{"--encrypt=AES-256-GCM", "--compress=zstd"}, func(c *Config) bool { return c.Encrypt == "AES-256-GCM" && c.Compress == "zstd" }},
		{[]string{"--encrypt=AES-192-CBC", "--encrypt"}, func(c *Config) bool { return c.Encrypt == "AES-192-CBC" }},
		{[]string{"--encrypt", "--encrypt=AES-256-CBC"}, func(c *Config) bool { return c.Encrypt == "AES-256-CBC" }},
		{[]string{"--encrypt", "--compress=zstd"}, func(c *Config) bool { return c.Compress == "zstd" }},
		{[]string{"--encrypt=AES-256-CBC", "--keyLength=64"}, func(c *Config) bool { return c.KeyLength == 64 }},
		{[]string{"--encrypt", "--keyLength=0"}, func(c *Config) bool { return c.KeyLength == 0 }},
		{[]string{"--encrypt", "--password=pw"}, func(c *Config) bool { return c.Password == "pw" }},
		{[]string{"--encrypt", "--passwordFile=/k"}, func(c *Config) bool { return c.PasswordFile == "/k" }},
		{[]string{"--defaultContentEncoding=deflate,encrypt-AES-128-CBC"}, func(c *Config) bool {
			return c.DefaultContentEncoding == "deflate,encrypt-AES-128-CBC"
		}},
		{[]string{"--listBlocks"}, func(c *Config) bool { return c.ListBlocks }},
		{[]string{"--listBlocks", "--listBlocksThreads=50"}, func(c *Config) bool { return c.ListBlocksThreads == 50 }},
		{[]string{"--blockCacheSize=0"}, func(c *Config) bool { return c.BlockCacheSize == 0 }},
		{[]string{"--blockCacheSize=0", "--blockCacheThreads=0"}, func(c *Config) bool { return c.BlockCacheThreads == 0 }},
		{[]string{"--blockCacheThreads=4"}, func(c *Config) bool { return c.BlockCacheThreads == 4 }},
		{[]string{"--blockCacheWriteDelay=15000"}, func(c *Config) bool { return c.BlockCacheWriteDelay == 15*time.Second }},
		{[]string{"--blockCacheTimeout=60000"}, func(c *Config) bool { return c.BlockCacheTimeout == time.Minute }},
		{[]string{"--blockCacheMaxDirty=100"}, func(c *Config) bool { return c.BlockCacheMaxDirty == 100 }},
		{[]string{"--blockCacheSync", "--blockCacheWriteDelay=0"}, func(c *Config) bool { return c.BlockCacheSync }},
		{[]string{"--blockCacheFile=/c"}, func(c *Config) bool { return c.BlockCacheFile == "/c" }},
		{[]string{"--blockCacheFile=/c", "--blockCacheRecoverDirtyBlocks"}, func(c *Config) bool { return c.BlockCacheRecoverDirtyBlocks }},
		{[]string{"--blockCacheNoVerify"}, func(c *Config) bool { return c.BlockCacheNoVerify }},
		{[]string{"--blockCacheFileAdvise"}, func(c *Config) bool { return c.BlockCacheFileAdvise }},
		{[]string{"--blockCacheNumProtected=10"}, func(c *Config) bool { return c.BlockCacheNumProtected == 10 }},
		{[]string{"--readAhead=16"}, func(c *Config) bool { return c.ReadAhead == 16 }},
		{[]string{"--readAheadTrigger=1"}, func(c *Config) bool { return c.ReadAheadTrigger == 1 }},
		{[]string{"--md5CacheSize=100"}, func(c *Config) bool { return c.MD5CacheSize == 100 }},
		{[]string{"--md5CacheSize=100", "--md5CacheTime=10000", "--minWriteDelay=500"}, func(c *Config) bool {
			return c.MD5CacheTime == 10*time.Second && c.MinWriteDelay == 500*time.Millisecond
		}},
		{[]string{"--readOnly", "--md5CacheSize=100", "--md5CacheTime=10000"}, func(c *Config) bool {
			return c.MD5CacheSize == 0 && c.MD5CacheTime == 0 // read-only turns the MD5 cache off
		}},
		{[]string{"--sharedDiskMode"}, func(c *Config) bool {
			return c.SharedDiskMode && c.BlockCacheSize == 0 && c.DirectIO && !c.ListBlocks
		}},
		{[]string{"--statsFileMirror=/run/s.txt"}, func(c *Config) bool { return c.StatsFileMirror == "/run/s.txt" }},
		{[]string{"--statsFileMirrorInterval=5000"}, func(c *Config) bool { return c.StatsFileMirrorInterval == 5*time.Second }},
		{[]string{"--metricsListen=127.0.0.1:9350"}, func(c *Config) bool { return c.MetricsListen == "127.0.0.1:9350" }},
		{[]string{"--metricsListen=[::1]:0"}, func(c *Config) bool { return c.MetricsListen == "[::1]:0" }},
		{[]string{"--debug"}, func(c *Config) bool { return c.Debug && !c.Foreground }},
		{[]string{"--debug-http"}, func(c *Config) bool { return c.DebugHTTP }},
		{[]string{"--quiet"}, func(c *Config) bool { return c.Quiet }},
		{[]string{"--filename=disk.img"}, func(c *Config) bool { return c.Filename == "disk.img" }},
		{[]string{"--statsFilename="}, func(c *Config) bool { return c.StatsFilename == "" && c.IsSet("statsFilename") }},
		{[]string{"--fileMode=644"}, func(c *Config) bool { return c.FileMode == 0o644 }},
		{[]string{"--fileMode=04755"}, func(c *Config) bool { return c.FileMode == 0o755|fs.ModeSetuid }},
		{[]string{"--directIO"}, func(c *Config) bool { return c.DirectIO }},
		{[]string{"-f"}, func(c *Config) bool { return c.Foreground && !c.Debug && c.IsSet("-f") }},
		{[]string{"-d"}, func(c *Config) bool { return c.Foreground && c.Debug && c.FuseDebug && c.IsSet("-d") }},
		{[]string{"-s"}, func(c *Config) bool { return c.SingleThreaded && c.IsSet("-s") }},
		{[]string{"--test-delays"}, func(c *Config) bool { return c.TestDelays && hasWarning(c, "--test-delays") }},
		{[]string{"--test-discard"}, func(c *Config) bool { return c.TestDiscard }},
		{[]string{"--test-errors"}, func(c *Config) bool { return c.TestErrors }},
		// Last one wins.
		{[]string{"--size=1g", "--size=2g"}, func(c *Config) bool { return c.Size == 2<<30 }},
		{[]string{"--accessType=public-read", "-o", "accessType=private"}, func(c *Config) bool { return c.AccessType == "private" }},
	}
	for _, tt := range tests {
		c, err := Parse(append(slices.Clone(tt.args), b...))
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !tt.check(c) {
			t.Errorf("%q: wrong result: %+v", tt.args, *c)
		}
	}
}

// flagSamples is a valid value for every value flag, and extra arguments
// some flags need in order to be valid.
var flagSamples = map[string]struct {
	value string
	extra []string
}{
	"accessFile": {value: "/f"}, "accessId": {value: "id"}, "accessKey": {value: "k"},
	"accessKeyEnv": {value: "VAR"}, "accessType": {value: "public-read"}, "accessEC2IAM": {value: "role"},
	"authVersion": {value: "aws2"}, "baseURL": {value: "http://localhost:9000/"}, "region": {value: "eu-west-1"},
	"cacert": {value: "/ca"}, "ipTOS": {value: "lowdelay"}, "timeout": {value: "5"},
	"initialRetryPause": {value: "100"}, "maxRetryPause": {value: "1000"}, "maxUploadSpeed": {value: "1m"},
	"maxDownloadSpeed": {value: "1m"}, "storageClass": {value: "STANDARD_IA"}, "sse": {value: "AES256"},
	"sse-key-id": {value: "k"}, "prefix": {value: "p/"}, "blockSize": {value: "4k"}, "size": {value: "1g"},
	"compress": {value: "zstd"}, "compress-level": {value: "5", extra: []string{"--compress=zstd"}},
	"encrypt": {value: "aes-256-cbc"}, "keyLength": {value: "32", extra: []string{"--encrypt=AES-256-CBC"}},
	"password": {value: "pw"}, "passwordFile": {value: "/pw"}, "defaultContentEncoding": {value: "deflate"},
	"listBlocksThreads": {value: "4"}, "blockCacheSize": {value: "10"}, "blockCacheThreads": {value: "2"},
	"blockCacheWriteDelay": {value: "100"}, "blockCacheTimeout": {value: "100"}, "blockCacheMaxDirty": {value: "5"},
	"blockCacheFile": {value: "/c"}, "blockCacheNumProtected": {value: "5"}, "readAhead": {value: "8"},
	"readAheadTrigger": {value: "3"}, "md5CacheSize": {value: "10"},
	"md5CacheTime":    {value: "1000", extra: []string{"--md5CacheSize=10"}},
	"minWriteDelay":   {value: "100", extra: []string{"--md5CacheSize=10"}},
	"statsFileMirror": {value: "/s"}, "statsFileMirrorInterval": {value: "100"},
	"metricsListen": {value: "127.0.0.1:9350"},
	"filename":      {value: "disk"}, "statsFilename": {value: "st"}, "fileMode": {value: "0644"},
	"nbd-flag": {value: "--verbose"}, "nbd-param": {value: "x=y"},
	"blockCacheSync":               {extra: []string{"--blockCacheWriteDelay=0"}},
	"blockCacheRecoverDirtyBlocks": {extra: []string{"--blockCacheFile=/c"}},
	"noAutoDetect":                 {extra: []string{"--size=1m"}},
	"test":                         {extra: []string{"--size=1m"}},
}

// TestEveryFlagBothForms: every flag of the table parses as --flag[=v]
// and as -o flag[=v] (as -oflag[=v] too), and is recorded by IsSet.
func TestEveryFlagBothForms(t *testing.T) {
	cf := writeFile(t, t.TempDir(), "c.conf", "--debug\n")
	for _, f := range Flags() {
		if f.Name == "help" || f.Name == "version" {
			continue // actions, see TestHelpVersion
		}
		s := flagSamples[f.Name]
		if f.Name == "configFile" {
			s.value = cf
		}
		if f.Kind == KindValue && s.value == "" {
			t.Fatalf("no sample value for --%s", f.Name)
		}
		operands := []string{"bucket", "/mnt"}
		if f.Scope == ScopeNBD {
			operands = []string{"bucket", "/dev/nbd0"}
			if f.Name != "nbd" {
				s.extra = append(s.extra, "--nbd")
			}
		}
		if f.Name == "erase" || f.Name == "reset-mounted-flag" {
			operands = operands[:1]
		}
		long, opt := "--"+f.Name, f.Name
		if f.Kind != KindBool {
			long += "=" + s.value
			opt += "=" + s.value
		}
		forms := [][]string{{long}}
		if f.Scope != ScopeNBD {
			forms = append(forms, []string{"-o", opt}, []string{"-o" + opt}, []string{"-o", "allow_other," + opt + ",uid=0"})
		}
		for _, form := range forms {
			args := append(append(append([]string(nil), s.extra...), form...), operands...)
			c, err := Parse(args)
			if err != nil {
				t.Errorf("%q: %v", args, err)
				continue
			}
			if !c.IsSet(f.Name) {
				t.Errorf("%q: IsSet(%q) = false", args, f.Name)
			}
			var names []string
			for _, st := range c.Settings() {
				names = append(names, st.Name)
			}
			if !slices.Contains(names, f.Name) {
				t.Errorf("%q: Settings %v lack %q", args, names, f.Name)
			}
		}
		// An optional-value flag also works bare.
		if f.Kind == KindOptional {
			mustParse(t, "--"+f.Name, "b", "/m")
			mustParse(t, "-o", f.Name, "b", "/m")
		}
	}
}

func TestOptionSplicing(t *testing.T) {
	c := mustParse(t, "-o", "allow_other,size=1g,uid=0", "-omax_readahead=0,blockSize=4k", "-o", "readOnly,fsname=a\\,b", "b", "/m")
	if want := []string{"allow_other", "uid=0", "max_readahead=0", "fsname=a,b"}; !slices.Equal(c.FuseOptions, want) {
		t.Errorf("FuseOptions = %q, want %q", c.FuseOptions, want)
	}
	if c.Size != 1<<30 || c.BlockSize != 4096 || !c.ReadOnly {
		t.Errorf("s3backer flags in -o not applied: %d %d %v", c.Size, c.BlockSize, c.ReadOnly)
	}
	if !c.IsSet("-o") {
		t.Error(`IsSet("-o") = false`)
	}
	// Empty items are skipped; escapes follow libfuse.
	c = mustParse(t, "-o", ",,a\\\\b,\\101x,", "b", "/m")
	if want := []string{`a\b`, "Ax"}; !slices.Equal(c.FuseOptions, want) {
		t.Errorf("FuseOptions = %q, want %q", c.FuseOptions, want)
	}
	// A case-only misspelling passes through to FUSE with a warning.
	c = mustParse(t, "-o", "readonly", "b", "/m")
	if !slices.Equal(c.FuseOptions, []string{"readonly"}) || !hasWarning(c, "did you mean readOnly") {
		t.Errorf("FuseOptions %q, warnings %q", c.FuseOptions, c.Warnings)
	}
	// Settings keep the command-line order.
	c = mustParse(t, "--size=1g", "-o", "allow_other,force", "-f", "b", "/m")
	var got []string
	for _, s := range c.Settings() {
		got = append(got, s.Name+"="+s.Value)
	}
	if want := []string{"size=1g", "-o=allow_other", "force=", "-f="}; !slices.Equal(got, want) {
		t.Errorf("Settings = %q, want %q", got, want)
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		args  []string
		wants []string
	}{
		{[]string{"--readOnly=yes", "b", "/m"}, []string{"--readOnly=yes", "takes no value"}},
		{[]string{"--readOnly=true", "b", "/m"}, []string{"--readOnly=true", "takes no value"}},
		{[]string{"-o", "readOnly=1", "b", "/m"}, []string{"-o readOnly=1", "takes no value"}},
		{[]string{"--nbd=1", "b", "/m"}, []string{"--nbd=1", "takes no value"}},
		{[]string{"--size", "b", "/m"}, []string{"--size", "requires a value", "--size=SIZE"}},
		{[]string{"-o", "size", "b", "/m"}, []string{"-o size", "requires a value"}},
		{[]string{"--prefix", "b", "/m"}, []string{"--prefix", "requires a value"}},
		{[]string{"--fooBar", "b", "/m"}, []string{"unknown flag --fooBar"}},
		{[]string{"--fooBar=1", "b", "/m"}, []string{"unknown flag --fooBar"}},
		{[]string{"--blocksize=4k", "b", "/m"}, []string{"unknown flag --blocksize", "did you mean --blockSize?"}},
		{[]string{"--blokSize=4k", "b", "/m"}, []string{"unknown flag --blokSize", "did you mean --blockSize?"}},
		{[]string{"--readonly", "b", "/m"}, []string{"did you mean --readOnly?"}},
		{[]string{"--blockCacheSze=4", "b", "/m"}, []string{"did you mean --blockCacheSize?"}},
		{[]string{"--", "b", "/m", "x"}, []string{`unexpected extra operand "x"`}},
		{[]string{"-x", "b", "/m"}, []string{"unknown flag -x"}},
		{[]string{"-", "b", "/m"}, []string{"unknown flag -"}},
		{[]string{"-size=1g", "b", "/m"}, []string{"unknown flag -size=1g", "did you mean --size=1g?"}},
		{[]string{"-fd", "b", "/m"}, []string{"unknown flag -fd"}},
		{[]string{"b", "/m", "-o"}, []string{"-o requires an option list"}},
		{[]string{"b", "/m", "-F"}, []string{"-F requires a FILE"}},
		{[]string{"--configFile", "b", "/m"}, []string{"--configFile requires a value"}},
		{[]string{"-o", "configFile", "b", "/m"}, []string{"-o configFile requires a value"}},
		{[]string{"-o", "nbd", "b", "/m"}, []string{"-o nbd", "only allowed on the command line"}},
		{[]string{"-o", "nbd-flag=x", "b", "/m"}, []string{"-o nbd-flag=x", "only allowed on the command line"}},
		{[]string{"--compress=", "b", "/m"}, []string{"--compress=", "empty value"}},
		{[]string{"--accessEC2IAM=", "b", "/m"}, []string{"--accessEC2IAM=", "empty role"}},
		{[]string{"--region=", "b", "/m"}, []string{"--region=", "empty region"}},
	}
	for _, tt := range tests {
		_, err := Parse(tt.args)
		wantErr(t, strings.Join(tt.args, " "), err, tt.wants...)
	}
	// No suggestion when nothing is close.
	_, err := Parse([]string{"--fooBar", "b", "/m"})
	if err != nil && strings.Contains(err.Error(), "did you mean") {
		t.Errorf("unexpected suggestion: %v", err)
	}
}

func TestValueErrors(t *testing.T) {
	tests := []struct {
		args  []string
		wants []string
	}{
		{[]string{"--blockSize=4x"}, []string{"--blockSize=4x", "invalid size"}},
		{[]string{"--size=abc"}, []string{"--size=abc", "invalid size"}},
		{[]string{"--metricsListen=9350"}, []string{"--metricsListen=9350", "want HOST:PORT"}},
		{[]string{"--size=1z"}, []string{"--size=1z", "too big"}},
		{[]string{"--size=0"}, []string{"--size=0", "greater than zero"}},
		{[]string{"--size=16e"}, []string{"--size=16e", "too big"}},
		{[]string{"--maxUploadSpeed=fast"}, []string{"--maxUploadSpeed=fast", "invalid size"}},
		{[]string{"--maxDownloadSpeed=0k"}, []string{"--maxDownloadSpeed=0k", "greater than zero"}},
		{[]string{"--timeout=-1"}, []string{"--timeout=-1", "not a non-negative integer"}},
		{[]string{"--timeout=1s"}, []string{"--timeout=1s", "not a non-negative integer"}},
		{[]string{"--timeout="}, []string{"--timeout=", "empty value"}},
		{[]string{"--blockCacheSize=4294967296"}, []string{"--blockCacheSize=4294967296", "out of range"}},
		{[]string{"--listBlocksThreads=2147483648"}, []string{"--listBlocksThreads", "out of range"}},
		{[]string{"--initialRetryPause=1.5"}, []string{"--initialRetryPause=1.5"}},
		{[]string{"--keyLength=65"}, []string{"--keyLength=65", "out of range"}},
		{[]string{"--accessType=public"}, []string{"--accessType=public", "private, public-read, public-read-write, authenticated-read"}},
		{[]string{"--authVersion=aws3"}, []string{"--authVersion=aws3", "aws2, aws4"}},
		{[]string{"--storageClass=standard"}, []string{"--storageClass=standard", "STANDARD_IA"}},
		{[]string{"--sse=kms"}, []string{"--sse=kms", "AES256, aws:kms"}},
		{[]string{"--encrypt=aes128"}, []string{"--encrypt=aes128", "AES-128-CBC, AES-192-CBC, AES-256-CBC, AES-256-GCM"}},
		{[]string{"--encrypt=AES-128-GCM"}, []string{"--encrypt=AES-128-GCM", "unsupported cipher"}},
		{[]string{"--compress=lz4"}, []string{"--compress=lz4", "unknown compression algorithm", "deflate or zstd"}},
		{[]string{"--ipTOS=fast"}, []string{"--ipTOS=fast", "lowdelay"}},
		{[]string{"--ipTOS=256"}, []string{"--ipTOS=256", "0 to 255"}},
		{[]string{"--fileMode=999"}, []string{"--fileMode=999", "octal"}},
		{[]string{"--fileMode=017777"}, []string{"--fileMode=017777", "out of range"}},
		{[]string{"-o", "blockSize=huge"}, []string{"-o blockSize=huge", "invalid size"}},
	}
	for _, tt := range tests {
		_, err := Parse(append(tt.args, "b", "/m"))
		wantErr(t, strings.Join(tt.args, " "), err, tt.wants...)
	}
}

func TestOperands(t *testing.T) {
	c := mustParse(t, "mybucket/disk1", "/mnt")
	if c.Bucket != "mybucket" || c.Prefix != "disk1/" || c.BucketArg != "mybucket/disk1" {
		t.Errorf("bucket/subdir: %q %q %q", c.Bucket, c.Prefix, c.BucketArg)
	}
	c = mustParse(t, "mybucket/foo/bar", "/mnt")
	if c.Bucket != "mybucket" || c.Prefix != "foo/bar/" {
		t.Errorf("bucket/foo/bar: %q %q", c.Bucket, c.Prefix)
	}
	c = mustParse(t, "--prefix=foo/bar/", "mybucket", "/mnt")
	if c.Bucket != "mybucket" || c.Prefix != "foo/bar/" {
		t.Errorf("--prefix: %q %q", c.Bucket, c.Prefix)
	}
	c = mustParse(t, "--prefix=", "mybucket/x", "/mnt") // empty --prefix does not conflict
	if c.Prefix != "x/" {
		t.Errorf("empty --prefix with subdir: %q", c.Prefix)
	}
	// Flags after operands, and "--".
	c = mustParse(t, "b", "--debug", "/m", "-f")
	if !c.Debug || !c.Foreground || c.Target != "/m" {
		t.Errorf("interspersed flags: %+v", c)
	}
	c = mustParse(t, "--debug", "--", "b", "-weird-mount")
	if c.Target != "-weird-mount" {
		t.Errorf("after --: Target %q", c.Target)
	}
	// --test keeps the directory as given, slashes and all, with no split.
	c = mustParse(t, "--test", "--size=1m", "rel/dir", "/m")
	if !c.Test || c.Bucket != "rel/dir" || c.TestDir() != "rel/dir" || c.Prefix != "" || c.AutoDetect() {
		t.Errorf("--test: %q %q %q %v", c.Bucket, c.TestDir(), c.Prefix, c.AutoDetect())
	}
	c = mustParse(t, "--test", "--size=1m", "--prefix=p-", "/abs/dir/", "/m")
	if c.Bucket != "/abs/dir/" || c.Prefix != "p-" {
		t.Errorf("--test absolute: %q %q", c.Bucket, c.Prefix)
	}
	// --erase and --reset-mounted-flag take no mount point.
	c = mustParse(t, "--erase", "--force", "mybucket/d")
	if !c.Erase || c.Target != "" || c.IsFUSE() || c.Prefix != "d/" {
		t.Errorf("--erase: %+v", c)
	}
	c = mustParse(t, "--reset-mounted-flag", "mybucket")
	if !c.ResetMountedFlag || c.Target != "" {
		t.Errorf("--reset-mounted-flag: %+v", c)
	}
	if c := mustParse(t, "b", "/m"); c.TestDir() != "" {
		t.Errorf("TestDir outside --test = %q", c.TestDir())
	}

	errs := []struct {
		args  []string
		wants []string
	}{
		{nil, []string{"missing bucket"}},
		{[]string{"--debug"}, []string{"missing bucket"}},
		{[]string{"--test", "--size=1m"}, []string{"missing test directory"}},
		{[]string{"mybucket"}, []string{"missing mount point"}},
		{[]string{"--nbd", "mybucket"}, []string{"missing NBD device"}},
		{[]string{"b", "/m", "extra"}, []string{`unexpected extra operand "extra"`}},
		{[]string{"b", ""}, []string{"empty mount point"}},
		{[]string{"", "/m"}, []string{`invalid bucket ""`}},
		{[]string{"/b", "/m"}, []string{`invalid bucket "/b"`}},
		{[]string{"b/", "/m"}, []string{`invalid bucket/subdir "b/"`}},
		{[]string{"b//x", "/m"}, []string{`invalid bucket/subdir "b//x"`}},
		{[]string{"b/x/", "/m"}, []string{`invalid bucket/subdir "b/x/"`}},
		{[]string{"b/x//y", "/m"}, []string{`invalid bucket/subdir "b/x//y"`}},
		{[]string{"--prefix=p/", "b/x", "/m"}, []string{`bucket "b/x"`, "--prefix=p/"}},
		{[]string{"--test", "--size=1m", "", "/m"}, []string{"empty test directory"}},
		{[]string{"--erase", "b", "/m"}, []string{"--erase takes no mount point", `"/m"`}},
		{[]string{"--reset-mounted-flag", "b", "/m"}, []string{"--reset-mounted-flag takes no mount point"}},
	}
	for _, tt := range errs {
		_, err := Parse(tt.args)
		wantErr(t, strings.Join(tt.args, " "), err, tt.wants...)
	}
}

func TestNBDMode(t *testing.T) {
	c := mustParse(t, "--nbd", "-f", "-d", "--nbd-flag=--verbose", "--size=1g", "--nbd-param=a=b",
		"--nbd-flag=--threads=4", "--readOnly=TRUE", "mybucket/d", "/dev/nbd0")
	if !c.NBD || !c.Foreground || !c.Debug || !c.ReadOnly || c.Prefix != "d/" {
		t.Errorf("%+v", c)
	}
	if !slices.Equal(c.NBDFlags, []string{"--verbose", "--threads=4"}) || !slices.Equal(c.NBDParams, []string{"a=b"}) {
		t.Errorf("NBDFlags %q NBDParams %q", c.NBDFlags, c.NBDParams)
	}
	for _, target := range []string{"nbd://127.0.0.1:10809", "nbd+unix:///?socket=/run/s.sock", "/dev/nbd15"} {
		if c := mustParse(t, "--nbd", "b", target); c.Target != target {
			t.Errorf("Target = %q, want %q", c.Target, target)
		}
	}
	// --nbd after operands still counts; --test works with NBD.
	if c := mustParse(t, "b", "/dev/nbd0", "--nbd"); !c.NBD {
		t.Error("--nbd after operands not seen")
	}
	if c := mustParse(t, "--nbd", "--test", "--size=1m", "dir", "/dev/nbd0"); !c.NBD || !c.Test {
		t.Error("--nbd --test")
	}
	// FUSE-only flags are accepted but noted.
	if c := mustParse(t, "--nbd", "--filename=x", "b", "/dev/nbd0"); !hasWarning(c, "--filename has no effect with NBD") {
		t.Errorf("warnings %q", c.Warnings)
	}

	errs := []struct {
		args  []string
		wants []string
	}{
		{[]string{"--nbd", "-o", "size=1g", "b", "/dev/nbd0"}, []string{"-o: not allowed with --nbd", "-f and -d"}},
		{[]string{"--nbd", "-osize=1g", "b", "/dev/nbd0"}, []string{"-osize=1g: not allowed with --nbd"}},
		{[]string{"--nbd", "-s", "b", "/dev/nbd0"}, []string{"-s: not allowed with --nbd"}},
		{[]string{"-F", "x.conf", "--nbd", "b", "/dev/nbd0"}, []string{"-F: not allowed with --nbd"}},
		{[]string{"--nbd", "b", "/dev/nbd0", "-x"}, []string{"-x: not allowed with --nbd"}},
		{[]string{"--nbd", "--readOnly=yes", "b", "/dev/nbd0"}, []string{"--readOnly=yes", "takes no value"}},
		{[]string{"--nbd", "--nbd-flag", "b", "/dev/nbd0"}, []string{"--nbd-flag", "requires a value"}},
		{[]string{"--nbd-flag=x", "b", "/m"}, []string{"--nbd-flag and --nbd-param require --nbd"}},
		{[]string{"--nbd", "--erase", "b"}, []string{"--erase cannot be used with --nbd"}},
		{[]string{"--nbd", "--reset-mounted-flag", "b"}, []string{"--reset-mounted-flag cannot be used with --nbd"}},
		{[]string{"--nbd", "b", "/dev/nbd0", "x"}, []string{`unexpected extra operand "x"`}},
	}
	for _, tt := range errs {
		_, err := Parse(tt.args)
		wantErr(t, strings.Join(tt.args, " "), err, tt.wants...)
	}
	// After "--" single-dash words are operands, even with --nbd.
	if c := mustParse(t, "--nbd", "--", "b", "-dev"); c.Target != "-dev" {
		t.Errorf("Target = %q", c.Target)
	}
}

func TestHelpVersion(t *testing.T) {
	tests := []struct {
		args []string
		want Action
	}{
		{[]string{"--help"}, ActionHelp},
		{[]string{"-h"}, ActionHelp},
		{[]string{"-?"}, ActionHelp},
		{[]string{"--version"}, ActionVersion},
		{[]string{"-v"}, ActionVersion},
		// The first one wins, and both win over any other problem.
		{[]string{"--version", "--help"}, ActionVersion},
		{[]string{"--fooBar", "--size=bad", "--help"}, ActionHelp},
		{[]string{"--nbd", "-o", "x", "-h"}, ActionHelp},
		{[]string{"-F", "/nonexistent", "-v"}, ActionVersion},
		{[]string{"-o", "help", "b", "/m"}, ActionHelp}, // a table flag in -o form
		// After "--" they are operands.
		{[]string{"--", "b", "-h"}, ActionRun},
	}
	for _, tt := range tests {
		c, err := Parse(tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if c.Action != tt.want {
			t.Errorf("%q: Action = %v, want %v", tt.args, c.Action, tt.want)
		}
	}
	if _, err := Parse([]string{"--help=x"}); err == nil {
		t.Error("--help=x accepted")
	}
}

func TestErrorsAreWrapped(t *testing.T) {
	_, err := Parse([]string{"-F", "/nonexistent/s3b.conf", "b", "/m"})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing config file: %v does not wrap fs.ErrNotExist", err)
	}
}
