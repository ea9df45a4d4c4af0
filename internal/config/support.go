package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotSupported marks flags that s3backer-go parses but does not
// implement yet (errors.Is works on CheckImplemented's result).
var ErrNotSupported = errors.New("not supported yet")

// implemented lists what works today: flag table names, plus "-f", "-d",
// "-s" and "-o" (FUSE mount options). Add a name here in the same change
// that makes the feature work, and update TestCheckImplementedOptionsConf.
var implemented = map[string]bool{
	"test": true, "test-delays": true, "test-discard": true, "test-errors": true,
	"size": true, "blockSize": true, "prefix": true, "blockHashPrefix": true,
	"readOnly": true, "force": true, "noAutoDetect": true,
	"debug": true, "quiet": true,
	"nbd":        true,
	"configFile": true,
	"help":       true, "version": true,
	"-f": true, "-d": true,

	// FUSE mode (issue 7): the disk file, the stats file, -s, and -o
	// mount options (checked by the FUSE front end, which knows them).
	"filename": true, "statsFilename": true, "fileMode": true, "directIO": true,
	"-s": true, "-o": true,

	// --nbd through nbdkit and the plugin (issue 7).
	"nbd-flag": true, "nbd-param": true,

	// S3 (issue 3).
	"accessFile": true, "accessId": true, "accessKey": true, "accessKeyEnv": true,
	"accessEC2IAM": true, "accessEC2IAM-IMDSv2": true, "accessType": true, "authVersion": true,
	"baseURL": true, "region": true, "vhost": true, "no-vhost": true, "ssl": true,
	"cacert": true, "insecure": true, "http11": true, "noCurlCache": true, "ipTOS": true,
	"timeout": true, "initialRetryPause": true, "maxRetryPause": true,
	"maxUploadSpeed": true, "maxDownloadSpeed": true,
	"sse": true, "sse-key-id": true, "storageClass": true,
	"listBlocks": true, "listBlocksThreads": true,
	"erase": true, "reset-mounted-flag": true,
	"debug-http": true, "defaultContentEncoding": true, "sharedDiskMode": true,

	// Statistics and metrics (issue 8).
	"statsFileMirror": true, "statsFileMirrorInterval": true, "metricsListen": true,

	// Block cache (issue 5), in memory or in a cache file.
	"blockCacheSize": true, "blockCacheThreads": true, "blockCacheWriteDelay": true,
	"blockCacheMaxDirty": true, "blockCacheSync": true, "blockCacheTimeout": true,
	"blockCacheNumProtected": true, "readAhead": true, "readAheadTrigger": true,
	"blockCacheFile": true, "blockCacheRecoverDirtyBlocks": true, "blockCacheNoVerify": true,
	"blockCacheFileAdvise": true,

	// Eventual-consistency protection, the MD5 cache (issue 5).
	"md5CacheSize": true, "md5CacheTime": true, "minWriteDelay": true,

	// Compression and encryption (issue 4).
	"compress": true, "compress-level": true,
	"encrypt": true, "password": true, "passwordFile": true, "keyLength": true,
}

// CheckImplemented fails, one line per flag, for every flag given that is
// not implemented yet: "--blockCacheSize: not supported yet". It is a step
// of its own so that parsing can be tested (and used) for every flag.
// With NBD, FUSE-only flags and options are ignored (a config file may be
// shared between both modes), so they do not count.
func (c *Config) CheckImplemented() error {
	var errs []error
	seen := map[string]bool{}
	var fuseOpts []string
	for _, s := range c.settings {
		switch {
		case implemented[s.Name]:
		case c.IsNBD() && (s.Name == "-o" || s.Name == "-s" || isFUSEOnly(s.Name)):
		case s.Name == "-o":
			fuseOpts = append(fuseOpts, s.Value)
		case seen[s.Name]:
		case s.Name == "-s":
			seen[s.Name] = true
			errs = append(errs, fmt.Errorf("-s: %w", ErrNotSupported))
		default:
			seen[s.Name] = true
			errs = append(errs, fmt.Errorf("--%s: %w", s.Name, ErrNotSupported))
		}
	}
	if len(fuseOpts) > 0 {
		errs = append(errs, fmt.Errorf("-o %s: FUSE mount options are %w", strings.Join(fuseOpts, ","), ErrNotSupported))
	}
	return errors.Join(errs...)
}

func isFUSEOnly(name string) bool {
	f := lookup(name)
	return f != nil && f.Scope == ScopeFUSE
}
