package config

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"
)

// What is checked when:
//
//   - Parse (each flag as it is read): syntax, and the value on its own
//     (a size, a count, one of an enumeration, a cipher name).
//   - Validate (end of Parse): operands and combinations of flags, and the
//     geometry as far as it is known without the bucket: --blockSize alone,
//     and --size with --blockSize (or with its default of 4k when nothing
//     will be auto-detected).
//   - Finish (after auto-detection): the final size and block size, and
//     everything that depends on them.
//
// Credentials, password files, directories and devices are not looked at
// here: they belong to the layers that use them.

// sharedDiskForbidden are the flags --sharedDiskMode refuses (s3b_config.c).
var sharedDiskForbidden = []string{
	"listBlocks", "listBlocksThreads", "blockCacheSize", "blockCacheSync", "blockCacheThreads",
	"blockCacheTimeout", "blockCacheWriteDelay", "blockCacheMaxDirty", "blockCacheRecoverDirtyBlocks",
	"readAhead", "readAheadTrigger", "blockCacheNumProtected", "blockCacheFile", "blockCacheNoVerify",
	"blockCacheFileAdvise", "minWriteDelay", "md5CacheSize", "md5CacheTime",
}

// Compression level ranges: zlib, and ZSTD_minCLevel()..ZSTD_maxCLevel().
const (
	minDeflateLevel, maxDeflateLevel = -1, 9
	minZstdLevel, maxZstdLevel       = -(1 << 17), 22
	maxBlockSize                     = 1 << 31 // block sizes are 32-bit in s3backer
	maxKeyLength                     = 64      // EVP_MAX_KEY_LENGTH
)

// Validate checks the combinations of flags, fills in the defaults that
// depend on other flags (--fileMode, compression with --encrypt) and sets
// Warnings. Parse calls it; call it again after changing a Config by hand.
// It returns one error line per problem (errors.Join).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c.Warnings = append([]string(nil), c.parseWarnings...)

	// Defaults that depend on other flags.
	if !c.IsSet("fileMode") {
		c.FileMode = DefaultFileMode
		if c.ReadOnly {
			c.FileMode = DefaultFileModeReadOnly
		}
	}

	// Modes.
	if (c.IsSet("nbd-flag") || c.IsSet("nbd-param")) && !c.NBD {
		bad("--nbd-flag and --nbd-param require --nbd")
	}
	for _, n := range []string{"test-delays", "test-discard", "test-errors"} {
		if c.IsSet(n) && !c.Test {
			c.warnf("--%s has no effect without --test", n)
		}
	}
	if c.IsNBD() {
		for _, f := range flagTable {
			if f.Scope == ScopeFUSE && c.IsSet(f.Name) {
				c.warnf("--%s has no effect with NBD", f.Name)
			}
		}
	}

	// Credentials.
	if c.IsSet("accessKey") && c.IsSet("accessKeyEnv") {
		bad("--accessKey and --accessKeyEnv are mutually exclusive")
	}
	if c.IsSet("accessId") && c.AccessID == "" && (c.IsSet("accessKey") || c.IsSet("accessKeyEnv")) {
		bad("--accessKey/--accessKeyEnv given but --accessId is empty")
	}
	if c.AccessID != "" && c.AccessEC2IAM {
		bad("--accessId cannot be combined with --accessEC2IAM")
	}
	if c.AccessEC2IAMIMDSv2 && !c.AccessEC2IAM {
		c.warnf("--accessEC2IAM-IMDSv2 has no effect without --accessEC2IAM")
	}

	// Endpoint.
	if c.IsSet("baseURL") {
		if err := checkBaseURL(c.BaseURL); err != nil {
			bad("--baseURL=%s: %v", c.BaseURL, err)
		} else if c.SSL && !strings.HasPrefix(c.BaseURL, "https://") {
			bad("--ssl conflicts with the non-https --baseURL=%s", c.BaseURL)
		}
	}
	if c.SSE == "aws:kms" && c.SSEKeyID == "" {
		bad("--sse=aws:kms requires --sse-key-id")
	}
	if c.SSEKeyID != "" && c.SSE != "aws:kms" {
		c.warnf("--sse-key-id has no effect without --sse=aws:kms")
	}
	if c.InitialRetryPause > c.MaxRetryPause {
		bad("--initialRetryPause=%d must not exceed --maxRetryPause=%d", ms(c.InitialRetryPause), ms(c.MaxRetryPause))
	}

	// Encryption and compression.
	if c.Encrypt != "" {
		if c.IsSet("password") && c.IsSet("passwordFile") {
			bad("--password and --passwordFile are mutually exclusive")
		}
		if c.Encrypt == GCMCipher && c.KeyLength != 0 {
			bad("--keyLength applies to the AES-CBC ciphers only: %s keys are always 256 bits", GCMCipher)
		} else if kl := cipherKeyLens[c.Encrypt]; c.KeyLength != 0 && (c.KeyLength < kl || c.KeyLength > maxKeyLength) {
			bad("--keyLength=%d: must be 0 or from %d to %d for %s", c.KeyLength, kl, maxKeyLength, c.Encrypt)
		}
	} else {
		for _, n := range []string{"password", "passwordFile", "keyLength"} {
			if c.IsSet(n) {
				c.warnf("--%s has no effect without --encrypt", n)
			}
		}
	}
	if err := c.resolveCompression(); err != nil {
		errs = append(errs, err)
	}

	// Caches. --readOnly and --sharedDiskMode turn some off, as in s3backer.
	if c.ReadOnly {
		c.MD5CacheSize, c.MD5CacheTime, c.MinWriteDelay = 0, 0, 0
	}
	if c.SharedDiskMode {
		for _, n := range sharedDiskForbidden {
			if c.IsSet(n) {
				bad("--%s cannot be used with --sharedDiskMode", n)
			}
		}
		c.ListBlocks, c.BlockCacheSize, c.DirectIO = false, 0, true
		c.MD5CacheSize, c.MD5CacheTime, c.MinWriteDelay = 0, 0, 0
	}
	if c.MD5CacheSize == 0 && c.MD5CacheTime > 0 {
		bad("--md5CacheTime=%d must be 0 when the MD5 cache is off (--md5CacheSize=0)", ms(c.MD5CacheTime))
	}
	if c.MD5CacheSize == 0 && c.MinWriteDelay > 0 {
		bad("--minWriteDelay=%d must be 0 when the MD5 cache is off (--md5CacheSize=0)", ms(c.MinWriteDelay))
	}
	if c.MD5CacheTime > 0 && c.MD5CacheTime < c.MinWriteDelay {
		bad("--md5CacheTime=%d must be at least --minWriteDelay=%d", ms(c.MD5CacheTime), ms(c.MinWriteDelay))
	}
	if c.BlockCacheSize > 0 && c.BlockCacheThreads == 0 {
		bad("--blockCacheThreads=0: the block cache needs at least one thread")
	}
	if c.BlockCacheSync && c.BlockCacheWriteDelay > 0 {
		bad("--blockCacheSync requires --blockCacheWriteDelay=0 (it is %d)", ms(c.BlockCacheWriteDelay))
	}
	if c.BlockCacheRecoverDirtyBlocks && c.BlockCacheFile == "" {
		bad("--blockCacheRecoverDirtyBlocks requires --blockCacheFile")
	}
	if c.BlockCacheNumProtected > c.BlockCacheSize {
		c.warnf("--blockCacheNumProtected=%d is larger than the block cache (%d blocks); this may hurt performance",
			c.BlockCacheNumProtected, c.BlockCacheSize)
	}
	if c.ListBlocks && c.ListBlocksThreads < 1 {
		bad("--listBlocksThreads=0: --listBlocks needs at least one thread")
	}

	// FUSE names.
	if c.Filename == "" || strings.Contains(c.Filename, "/") {
		bad("--filename=%s: must be a non-empty name without '/'", c.Filename)
	}
	if strings.Contains(c.StatsFilename, "/") {
		bad("--statsFilename=%s: must not contain '/'", c.StatsFilename)
	} else if c.StatsFilename == c.Filename && c.Filename != "" {
		bad("--filename and --statsFilename must differ (both are %q)", c.Filename)
	}

	// Geometry, as far as it is known now.
	if c.IsSet("blockSize") {
		if err := c.checkBlockSize(c.blockSizeFlag, "--blockSize="+c.raw("blockSize")); err != nil {
			errs = append(errs, err)
		}
	}
	if !c.AutoDetect() && !c.IsSet("size") {
		why := "--noAutoDetect"
		if c.Test {
			why = "--test"
		}
		bad("--size is required with %s (nothing is auto-detected)", why)
	}
	if c.IsSet("size") && (c.IsSet("blockSize") || !c.AutoDetect()) {
		bs := c.blockSizeFlag
		if bs == 0 {
			bs = DefaultBlockSize
		}
		if c.checkBlockSize(bs, "") == nil {
			if err := checkGeometry(c.sizeFlag, bs, "--size="+c.raw("size")); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// resolveCompression turns --compress, --compress-level and --encrypt into
// Compress and CompressLevel.
func (c *Config) resolveCompression() error {
	alg, level, haveLevel, levelName := "", 0, false, ""
	switch {
	case c.compressArg != "":
		if n, ok := parseLevel(c.compressArg); ok {
			if c.compressLevel != "" {
				return fmt.Errorf("--compress-level=%s cannot be combined with a level in --compress=%s", c.compressLevel, c.compressArg)
			}
			alg, level, haveLevel, levelName = "deflate", n, true, "--compress="+c.compressArg
		} else {
			alg = canonicalCompress(c.compressArg)
		}
	case c.compressBare:
		// s3backer rejects "--compress --compress-level=N"; we read it as
		// deflate at level N, which is what it plainly means.
		alg = "deflate"
	case c.compressLevel != "":
		return fmt.Errorf("--compress-level=%s requires --compress", c.compressLevel)
	}
	if alg == "" && c.Encrypt != "" {
		alg = "deflate" // encryption always compresses (§4.2)
	}
	if c.compressLevel != "" {
		n, ok := parseLevel(c.compressLevel)
		if !ok {
			return fmt.Errorf("--compress-level=%s: not an integer", c.compressLevel)
		}
		level, haveLevel, levelName = n, true, "--compress-level="+c.compressLevel
	}
	switch {
	case alg == "":
		level = 0
	case !haveLevel && alg == "deflate":
		level = DefaultDeflateLevel
	case !haveLevel:
		level = DefaultZstdLevel
	case alg == "deflate" && (level < minDeflateLevel || level > maxDeflateLevel):
		return fmt.Errorf("%s: deflate levels are %d to %d", levelName, minDeflateLevel, maxDeflateLevel)
	case alg == "zstd" && (level < minZstdLevel || level > maxZstdLevel):
		return fmt.Errorf("%s: zstd levels are %d to %d", levelName, minZstdLevel, maxZstdLevel)
	}
	c.Compress, c.CompressLevel = alg, level
	return nil
}

// checkBaseURL applies s3backer's rules (§1.6): http:// or https://, a
// host, and a trailing '/'.
func checkBaseURL(u string) error {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(u, "https://"); !ok {
			return errors.New("must start with http:// or https://")
		}
	}
	if rest == "" || rest[0] == '/' {
		return errors.New("has no host")
	}
	if !strings.HasSuffix(rest, "/") {
		return errors.New("must end with '/'")
	}
	return nil
}

func (c *Config) checkBlockSize(bs int64, name string) error {
	switch {
	case bs <= 0 || bs&(bs-1) != 0:
		return fmt.Errorf("%s: block size must be a power of two", name)
	case bs > maxBlockSize:
		return fmt.Errorf("%s: block size must be at most %s", name, FormatSize(maxBlockSize))
	case c.Encrypt != "" && bs%16 != 0:
		return fmt.Errorf("%s: block size must be a multiple of 16 with --encrypt", name)
	}
	return nil
}

// checkGeometry: size a positive multiple of bs, fewer than 2^32 blocks.
func checkGeometry(size, bs int64, sizeName string) error {
	if size <= 0 || size%bs != 0 {
		return fmt.Errorf("%s: size must be a multiple of the block size %s", sizeName, FormatSize(bs))
	}
	if n := uint64(size / bs); n > 1<<32-1 {
		return fmt.Errorf("%s: more than 2^32-1 blocks of %s (%d); increase --blockSize", sizeName, FormatSize(bs), n)
	}
	return nil
}

// Finish settles the disk geometry once auto-detection has run (pass the
// size and block size found in block 0's metadata, or zeros if nothing was
// found or AutoDetect() is false), following s3backer: a detected value
// fills in a flag that was not given; a given value that differs is an
// error unless --force (then the flag wins, with a warning); with nothing
// detected --size is required and the block size defaults to 4k. It then
// sets Size, BlockSize and NumBlocks and checks what depends on them.
func (c *Config) Finish(detectedSize, detectedBlockSize int64) (warnings []string, err error) {
	size, bs := c.sizeFlag, c.blockSizeFlag
	sizeName, bsName := "--size="+c.raw("size"), "--blockSize="+c.raw("blockSize")
	if detectedSize > 0 && detectedBlockSize > 0 {
		if bs == 0 {
			bs, bsName = detectedBlockSize, "block size "+FormatSize(detectedBlockSize)+" (auto-detected)"
		} else if bs != detectedBlockSize {
			if !c.Force {
				return nil, fmt.Errorf("%s differs from the block size %s found in the bucket (--force overrides, but the data will not read back correctly)",
					bsName, FormatSize(detectedBlockSize))
			}
			warnings = append(warnings, fmt.Sprintf("%s differs from the block size %s found in the bucket; proceeding because of --force",
				bsName, FormatSize(detectedBlockSize)))
		}
		if size == 0 {
			size, sizeName = detectedSize, "size "+FormatSize(detectedSize)+" (auto-detected)"
		} else if size != detectedSize {
			if !c.Force {
				return nil, fmt.Errorf("%s differs from the size %s found in the bucket (--force overrides, but the data will not read back correctly)",
					sizeName, FormatSize(detectedSize))
			}
			warnings = append(warnings, fmt.Sprintf("%s differs from the size %s found in the bucket; proceeding because of --force",
				sizeName, FormatSize(detectedSize)))
		}
	} else {
		why := "failed"
		if !c.AutoDetect() {
			why = "disabled"
		}
		if size == 0 {
			return nil, fmt.Errorf("auto-detection of the disk size %s; please give --size", why)
		}
		if bs == 0 {
			bs, bsName = DefaultBlockSize, "the default block size 4k"
		}
	}
	if err := c.checkBlockSize(bs, bsName); err != nil {
		return nil, err
	}
	if err := checkGeometry(size, bs, sizeName); err != nil {
		return nil, err
	}
	n := uint64(size / bs)

	// The MD5 cache deadlocks if entries never expire and cannot cover the disk.
	if c.MD5CacheSize > 0 && c.MD5CacheTime == 0 && uint64(c.MD5CacheSize) < n {
		return nil, fmt.Errorf("--md5CacheTime=0 (never expire) needs --md5CacheSize of at least the number of blocks (%d), not %d",
			n, c.MD5CacheSize)
	}
	// A transfer of one block at the speed limit must fit in the timeout.
	timeout := int64(c.Timeout / time.Second)
	for _, s := range []struct {
		name  string
		speed int64
	}{{"maxUploadSpeed", c.MaxUploadSpeed}, {"maxDownloadSpeed", c.MaxDownloadSpeed}} {
		if s.speed == 0 {
			continue
		}
		if bytesPerSec := s.speed / 8; bytesPerSec == 0 || bs/bytesPerSec >= timeout {
			return nil, fmt.Errorf("--timeout=%d is too short for blocks of %s at --%s=%s bits/s",
				timeout, FormatSize(bs), s.name, FormatSize(s.speed))
		}
	}
	// Clamp cache sizes to the disk; warn only about a value the user
	// chose (the defaults exceed every small disk).
	if uint64(c.MD5CacheSize) > n {
		if c.IsSet("md5CacheSize") {
			warnings = append(warnings, fmt.Sprintf("--md5CacheSize=%d is more than the number of blocks (%d); reduced", c.MD5CacheSize, n))
		}
		c.MD5CacheSize = int(n)
	}
	if uint64(c.BlockCacheSize) > n {
		if c.IsSet("blockCacheSize") {
			warnings = append(warnings, fmt.Sprintf("--blockCacheSize=%d is more than the number of blocks (%d); reduced", c.BlockCacheSize, n))
		}
		c.BlockCacheSize = int(n)
	}
	// The cache file (data plus directory) must fit in an off_t.
	if c.BlockCacheSize > 0 && c.BlockCacheFile != "" &&
		bits.Len64(uint64(c.BlockCacheSize))+bits.TrailingZeros64(uint64(bs)) >= 63 {
		return nil, fmt.Errorf("--blockCacheSize=%s: a cache file of %d blocks of %s is too big", c.raw("blockCacheSize"), c.BlockCacheSize, FormatSize(bs))
	}
	c.Size, c.BlockSize, c.numBlocks = size, bs, n
	return warnings, nil
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// raw is the last value given for flag name, as written.
func (c *Config) raw(name string) string {
	for i := len(c.settings) - 1; i >= 0; i-- {
		if c.settings[i].Name == name {
			return c.settings[i].Value
		}
	}
	return ""
}
