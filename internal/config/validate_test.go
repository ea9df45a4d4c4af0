package config

import (
	"strings"
	"testing"
)

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		args  []string
		wants []string
	}{
		// Geometry known at parse time.
		{[]string{"--blockSize=3000"}, []string{"--blockSize=3000", "power of two"}},
		{[]string{"--blockSize=4g"}, []string{"--blockSize=4g", "at most 2g"}},
		{[]string{"--size=1000", "--blockSize=4k"}, []string{"--size=1000", "multiple of the block size 4k"}},
		{[]string{"--size=16t", "--blockSize=4k"}, []string{"--size=16t", "more than 2^32-1 blocks of 4k"}},
		{[]string{"--noAutoDetect", "--size=16t"}, []string{"--size=16t", "more than 2^32"}},
		{[]string{"--noAutoDetect", "--size=6000"}, []string{"--size=6000", "multiple of the block size 4k"}},
		{[]string{"--noAutoDetect"}, []string{"--size is required with --noAutoDetect"}},
		{[]string{"--encrypt", "--blockSize=8"}, []string{"--blockSize=8", "multiple of 16 with --encrypt"}},
		// Credentials and endpoint.
		{[]string{"--accessKey=k", "--accessKeyEnv=V"}, []string{"--accessKey and --accessKeyEnv are mutually exclusive"}},
		{[]string{"--accessId=", "--accessKey=k"}, []string{"--accessId is empty"}},
		{[]string{"--accessId=id", "--accessEC2IAM=role"}, []string{"--accessId cannot be combined with --accessEC2IAM"}},
		{[]string{"--baseURL=ftp://x/"}, []string{"--baseURL=ftp://x/", "http:// or https://"}},
		{[]string{"--baseURL=http:///"}, []string{"--baseURL=http:///", "no host"}},
		{[]string{"--baseURL=https://"}, []string{"--baseURL=https://", "no host"}},
		{[]string{"--baseURL=http://host/path"}, []string{"--baseURL=http://host/path", "must end with '/'"}},
		{[]string{"--baseURL=http://host:9000/", "--ssl"}, []string{"--ssl", "non-https --baseURL=http://host:9000/"}},
		{[]string{"--sse=aws:kms"}, []string{"--sse=aws:kms requires --sse-key-id"}},
		{[]string{"--initialRetryPause=5000", "--maxRetryPause=1000"}, []string{"--initialRetryPause=5000", "--maxRetryPause=1000"}},
		// Encryption and compression.
		{[]string{"--encrypt", "--password=a", "--passwordFile=/f"}, []string{"--password and --passwordFile are mutually exclusive"}},
		{[]string{"--encrypt", "--keyLength=8"}, []string{"--keyLength=8", "16 to 64 for AES-128-CBC"}},
		{[]string{"--encrypt=AES-256-CBC", "--keyLength=24"}, []string{"--keyLength=24", "32 to 64 for AES-256-CBC"}},
		{[]string{"--encrypt=AES-256-GCM", "--keyLength=32"}, []string{"--keyLength applies to the AES-CBC ciphers only"}},
		{[]string{"--compress-level=3"}, []string{"--compress-level=3 requires --compress"}},
		{[]string{"--encrypt", "--compress-level=3"}, []string{"--compress-level=3 requires --compress"}},
		{[]string{"--compress=5", "--compress-level=3"}, []string{"--compress-level=3", "--compress=5"}},
		{[]string{"--compress=deflate", "--compress-level=high"}, []string{"--compress-level=high", "not an integer"}},
		{[]string{"--compress=deflate", "--compress-level=10"}, []string{"--compress-level=10", "deflate levels are -1 to 9"}},
		{[]string{"--compress=-2"}, []string{"--compress=-2", "deflate levels are -1 to 9"}},
		{[]string{"--compress=zstd", "--compress-level=23"}, []string{"--compress-level=23", "zstd levels are -131072 to 22"}},
		{[]string{"--compress=zstd", "--compress-level=-131073"}, []string{"--compress-level=-131073", "zstd levels"}},
		// Caches.
		{[]string{"--md5CacheTime=1000"}, []string{"--md5CacheTime=1000", "--md5CacheSize=0"}},
		{[]string{"--minWriteDelay=500"}, []string{"--minWriteDelay=500", "--md5CacheSize=0"}},
		{[]string{"--md5CacheSize=10", "--md5CacheTime=100", "--minWriteDelay=500"}, []string{"--md5CacheTime=100 must be at least --minWriteDelay=500"}},
		{[]string{"--blockCacheThreads=0"}, []string{"--blockCacheThreads=0", "at least one thread"}},
		{[]string{"--blockCacheSync"}, []string{"--blockCacheSync requires --blockCacheWriteDelay=0", "it is 250"}},
		{[]string{"--blockCacheRecoverDirtyBlocks"}, []string{"--blockCacheRecoverDirtyBlocks requires --blockCacheFile"}},
		{[]string{"--listBlocks", "--listBlocksThreads=0"}, []string{"--listBlocksThreads=0"}},
		{[]string{"--sharedDiskMode", "--blockCacheSize=10"}, []string{"--blockCacheSize cannot be used with --sharedDiskMode"}},
		{[]string{"--sharedDiskMode", "--listBlocks"}, []string{"--listBlocks cannot be used with --sharedDiskMode"}},
		{[]string{"-o", "sharedDiskMode,readAhead=0"}, []string{"--readAhead cannot be used with --sharedDiskMode"}},
		{[]string{"--md5CacheTime=0", "--sharedDiskMode"}, []string{"--md5CacheTime cannot be used with --sharedDiskMode"}},
		// FUSE names.
		{[]string{"--filename="}, []string{"--filename=", "non-empty name without '/'"}},
		{[]string{"--filename=a/b"}, []string{"--filename=a/b"}},
		{[]string{"--statsFilename=a/b"}, []string{"--statsFilename=a/b", "must not contain '/'"}},
		{[]string{"--statsFilename=file"}, []string{"--filename and --statsFilename must differ"}},
	}
	for _, tt := range tests {
		_, err := Parse(append(tt.args, "b", "/m"))
		wantErr(t, strings.Join(tt.args, " "), err, tt.wants...)
	}
}

// Several problems: one line each.
func TestValidationSeveralProblems(t *testing.T) {
	_, err := Parse([]string{"--accessKey=a", "--accessKeyEnv=b", "--blockCacheSync", "--filename=", "b", "/m"})
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %q", lines)
	}
	for i, w := range []string{"--accessKey", "--blockCacheSync", "--filename"} {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q lacks %q", i, lines[i], w)
		}
	}
}

func TestValidationWarnings(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--password=x"}, "--password has no effect without --encrypt"},
		{[]string{"--passwordFile=x"}, "--passwordFile has no effect without --encrypt"},
		{[]string{"--keyLength=32"}, "--keyLength has no effect without --encrypt"},
		{[]string{"--blockCacheNumProtected=2000"}, "--blockCacheNumProtected=2000 is larger than the block cache"},
		{[]string{"--sse-key-id=k"}, "--sse-key-id has no effect"},
		{[]string{"--accessEC2IAM-IMDSv2"}, "--accessEC2IAM-IMDSv2 has no effect"},
		{[]string{"--test-errors"}, "--test-errors has no effect without --test"},
	}
	for _, tt := range tests {
		c := mustParse(t, append(tt.args, "b", "/m")...)
		if !hasWarning(c, tt.want) {
			t.Errorf("%q: warnings %q lack %q", tt.args, c.Warnings, tt.want)
		}
	}
	// Validate is idempotent: warnings are not repeated.
	c := mustParse(t, "-o", "Force", "--password=x", "b", "/m")
	n := len(c.Warnings)
	if n != 2 {
		t.Fatalf("warnings %q", c.Warnings)
	}
	if err := c.Validate(); err != nil || len(c.Warnings) != n {
		t.Errorf("second Validate: %v, %q", err, c.Warnings)
	}
}

func TestFinish(t *testing.T) {
	parse := func(args ...string) *Config { return mustParse(t, append(args, "b", "/m")...) }

	// Nothing detected: --size required, block size 4k by default.
	c := parse("--size=1g")
	w, err := c.Finish(0, 0)
	if err != nil || len(w) != 0 || c.Size != 1<<30 || c.BlockSize != 4096 || c.NumBlocks() != 1<<18 {
		t.Errorf("default block size: %v %q %d %d %d", err, w, c.Size, c.BlockSize, c.NumBlocks())
	}
	_, err = parse().Finish(0, 0)
	wantErr(t, "no size", err, "auto-detection of the disk size failed", "--size")
	_, err = parse("--noAutoDetect", "--size=1m").Finish(0, 0)
	if err != nil {
		t.Error(err)
	}
	c = mustParse(t, "--test", "--size=1m", "/d", "/m")
	if _, err := c.Finish(0, 0); err != nil || c.BlockSize != 4096 {
		t.Error(err, c.BlockSize)
	}

	// Detected values fill in what was not given.
	c = parse()
	if w, err := c.Finish(1<<40, 1<<20); err != nil || len(w) != 0 || c.Size != 1<<40 || c.BlockSize != 1<<20 || c.NumBlocks() != 1<<20 {
		t.Errorf("detected: %v %q %d %d", err, w, c.Size, c.BlockSize)
	}
	c = parse("--blockSize=1m")
	if _, err := c.Finish(1<<40, 1<<20); err != nil {
		t.Error(err)
	}
	// A partial detection is a failed one.
	c = parse("--size=1g")
	if _, err := c.Finish(1<<40, 0); err != nil || c.Size != 1<<30 || c.BlockSize != 4096 {
		t.Error(err, c.Size, c.BlockSize)
	}

	// Mismatch: an error, or a warning with --force (the flag wins).
	_, err = parse("--blockSize=4k").Finish(1<<30, 1<<20)
	wantErr(t, "block size mismatch", err, "--blockSize=4k", "block size 1m found in the bucket", "--force")
	_, err = parse("--size=2g").Finish(1<<30, 1<<20)
	wantErr(t, "size mismatch", err, "--size=2g", "size 1g found in the bucket")
	c = parse("--force", "--size=2g", "--blockSize=4k")
	w, err = c.Finish(1<<30, 1<<20)
	if err != nil || len(w) != 2 || c.Size != 2<<30 || c.BlockSize != 4096 {
		t.Errorf("--force: %v %q %d %d", err, w, c.Size, c.BlockSize)
	}

	// Geometry of detected values is checked too.
	_, err = parse().Finish(1<<30, 3000)
	wantErr(t, "bad detected block size", err, "block size 3000 (auto-detected)", "power of two")
	_, err = parse().Finish(1<<30+512, 4096)
	wantErr(t, "bad detected size", err, "(auto-detected)", "multiple of the block size 4k")
	_, err = parse("--size=16t").Finish(0, 0)
	wantErr(t, "too many blocks", err, "--size=16t", "more than 2^32-1 blocks of 4k")
	if _, err := parse("--size=16t", "--blockSize=8k").Finish(0, 0); err != nil {
		t.Error(err)
	}
	c = parse("--size=16380g") // 2^32-1 blocks of 4k would be 16t-4k; this is fewer
	if _, err := c.Finish(0, 0); err != nil {
		t.Error(err)
	}
	_, err = parse("--encrypt").Finish(1<<20, 8)
	wantErr(t, "encrypt block size", err, "multiple of 16 with --encrypt")

	// What depends on the number of blocks.
	_, err = parse("--size=1g", "--md5CacheSize=100").Finish(0, 0)
	wantErr(t, "md5 deadlock", err, "--md5CacheTime=0", "--md5CacheSize")
	c = parse("--size=1m", "--md5CacheSize=1000", "--blockCacheSize=1000")
	w, err = c.Finish(0, 0)
	if err != nil || len(w) != 2 || c.MD5CacheSize != 256 || c.BlockCacheSize != 256 {
		t.Errorf("cache clamp: %v %q %d %d", err, w, c.MD5CacheSize, c.BlockCacheSize)
	}
	_, err = parse("--size=1g", "--blockSize=1m", "--maxUploadSpeed=8k").Finish(0, 0) // 1m at 1 KiB/s > 30 s
	wantErr(t, "speed", err, "--timeout=30", "--maxUploadSpeed=8k")
	_, err = parse("--size=1g", "--maxDownloadSpeed=7").Finish(0, 0)
	wantErr(t, "speed below a byte", err, "--maxDownloadSpeed=7")
	if _, err := parse("--size=1g", "--blockSize=1m", "--maxUploadSpeed=1m").Finish(0, 0); err != nil {
		t.Error(err)
	}
	_, err = parse("--size=4e", "--blockSize=2g", "--blockCacheFile=/c", "--blockCacheSize=4294967295").Finish(0, 0)
	wantErr(t, "huge cache file", err, "--blockCacheSize=4294967295", "2147483648 blocks of 2g", "too big")
}
