package config

import (
	"fmt"
	"math"
	"net"
	"strings"
	"time"
)

// Kind says whether a flag takes a value.
type Kind int

const (
	// KindBool: "--flag" only; any "=value" is an error.
	KindBool Kind = iota
	// KindValue: "--flag=VALUE" only.
	KindValue
	// KindOptional: "--flag" or "--flag=VALUE" (compress, encrypt, accessEC2IAM).
	KindOptional
)

func (k Kind) String() string {
	switch k {
	case KindBool:
		return "bool"
	case KindValue:
		return "value"
	case KindOptional:
		return "optional-value"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ValueType is how a flag's value is read.
type ValueType int

const (
	TypeNone    ValueType = iota // booleans
	TypeString                   // any text (may be empty)
	TypeEnum                     // one of Flag.Choices
	TypeSize                     // <integer>[k|m|g|t|p|e], see ParseSize
	TypeCount                    // non-negative integer
	TypeMillis                   // non-negative integer, milliseconds
	TypeSeconds                  // non-negative integer, seconds
	TypeOctal                    // octal file mode
)

func (t ValueType) String() string {
	switch t {
	case TypeNone:
		return "none"
	case TypeString:
		return "string"
	case TypeEnum:
		return "enum"
	case TypeSize:
		return "size"
	case TypeCount:
		return "count"
	case TypeMillis:
		return "milliseconds"
	case TypeSeconds:
		return "seconds"
	case TypeOctal:
		return "octal"
	}
	return fmt.Sprintf("ValueType(%d)", int(t))
}

// Scope says where a flag means something (§11 of the format notes).
type Scope int

const (
	ScopeAll  Scope = iota // every mode, the nbdkit plugin included
	ScopeFUSE              // the FUSE file only (ignored with NBD)
	ScopeNBD               // the --nbd wrapper; command line only
	ScopeTest              // --test mode
	ScopeCLI               // the binary only, not the nbdkit plugin
)

func (s Scope) String() string {
	switch s {
	case ScopeAll:
		return "all"
	case ScopeFUSE:
		return "FUSE"
	case ScopeNBD:
		return "NBD"
	case ScopeTest:
		return "test"
	case ScopeCLI:
		return "CLI"
	}
	return fmt.Sprintf("Scope(%d)", int(s))
}

// Flag describes one s3backer --flag. Both "--Name[=v]" and "-o Name[=v]"
// spell it (except ScopeNBD flags: command line, --form only).
type Flag struct {
	Name    string
	Kind    Kind
	Type    ValueType
	Arg     string   // value placeholder for help ("SIZE"); "" for booleans
	Default string   // human-readable default for help; "" = none
	Scope   Scope    //
	Group   string   // help section
	Help    string   // one line
	Choices []string // TypeEnum values (and the ciphers of --encrypt)

	// set stores the value (hasValue false: bare optional flag).
	set func(c *Config, value string, hasValue bool) error
}

// Help sections, in the order Help prints them.
const (
	groupMode    = "Modes and actions"
	groupAccess  = "S3 credentials"
	groupHTTP    = "S3 endpoint and HTTP"
	groupLayout  = "Disk layout"
	groupCodec   = "Compression and encryption"
	groupCache   = "Block cache and read-ahead"
	groupConsist = "Zero blocks, consistency and sharing"
	groupFUSE    = "FUSE file"
	groupLog     = "Statistics and logging"
)

var groups = []string{groupMode, groupAccess, groupHTTP, groupLayout, groupCodec,
	groupCache, groupConsist, groupFUSE, groupLog}

// Enumerations s3backer checks.
var (
	accessTypes    = []string{"private", "public-read", "public-read-write", "authenticated-read"}
	authVersions   = []string{"aws2", "aws4"}
	sseTypes       = []string{"AES256", "aws:kms"}
	storageClasses = []string{"STANDARD", "STANDARD_IA", "ONEZONE_IA", "REDUCED_REDUNDANCY",
		"INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS"}
	// ciphers maps the accepted --encrypt names to their key length. s3backer
	// takes any OpenSSL CBC cipher; we implement AES only, and only the
	// canonical names round-trip with s3backer anyway (§14.4). AES-256-GCM
	// is our own extension, which s3backer cannot read (docs/encryption.md).
	ciphers       = []string{"AES-128-CBC", "AES-192-CBC", "AES-256-CBC", GCMCipher}
	cipherKeyLens = map[string]int{"AES-128-CBC": 16, "AES-192-CBC": 24, "AES-256-CBC": 32, GCMCipher: 32}
	compressAlgs  = []string{"deflate", "zstd"}
)

const (
	maxUint = math.MaxUint32 // s3backer reads these as %u
	maxInt  = math.MaxInt32  // ... and listBlocksThreads as %d
)

// flagTable is the single source of truth: parsing, help, the nbdkit
// parameter translation and the "not supported yet" check all read it.
var flagTable = []Flag{
	// Modes and actions.
	{Name: "configFile", Kind: KindValue, Type: TypeString, Arg: "FILE", Scope: ScopeAll, Group: groupMode,
		Help: "Insert the flags and operands in FILE (one per line) here; also -F FILE",
		set:  func(*Config, string, bool) error { return nil }}, // expanded before parsing
	boolFlag("nbd", ScopeNBD, groupMode, "Serve over NBD instead of FUSE; target is /dev/nbdX or an nbd:// or nbd+unix:// URI",
		func(c *Config) *bool { return &c.NBD }),
	{Name: "nbd-flag", Kind: KindValue, Type: TypeString, Arg: "STRING", Scope: ScopeNBD, Group: groupMode,
		Help: "Add STRING to the nbdkit command line before the plugin name (repeatable)",
		set:  func(c *Config, v string, _ bool) error { c.NBDFlags = append(c.NBDFlags, v); return nil }},
	{Name: "nbd-param", Kind: KindValue, Type: TypeString, Arg: "STRING", Scope: ScopeNBD, Group: groupMode,
		Help: "Add STRING to the nbdkit command line after the plugin name (repeatable)",
		set:  func(c *Config, v string, _ bool) error { c.NBDParams = append(c.NBDParams, v); return nil }},
	boolFlag("test", ScopeAll, groupMode, "Local test mode: the bucket operand is a directory of block files",
		func(c *Config) *bool { return &c.Test }),
	boolFlag("test-delays", ScopeTest, groupMode, "In test mode, add random I/O delays (0-199 ms)",
		func(c *Config) *bool { return &c.TestDelays }),
	boolFlag("test-discard", ScopeTest, groupMode, "In test mode, discard writes and read zeroes (no I/O)",
		func(c *Config) *bool { return &c.TestDiscard }),
	boolFlag("test-errors", ScopeTest, groupMode, "In test mode, inject random I/O errors",
		func(c *Config) *bool { return &c.TestErrors }),
	boolFlag("erase", ScopeCLI, groupMode, "Delete every block and the mounted flag, then exit (asks unless --force)",
		func(c *Config) *bool { return &c.Erase }),
	boolFlag("reset-mounted-flag", ScopeCLI, groupMode, "Clear the 'already mounted' flag, then exit",
		func(c *Config) *bool { return &c.ResetMountedFlag }),
	{Name: "help", Kind: KindBool, Scope: ScopeCLI, Group: groupMode, Help: "Show this help and exit (also -h, -?)",
		set: func(c *Config, _ string, _ bool) error { c.Action = ActionHelp; return nil }},
	{Name: "version", Kind: KindBool, Scope: ScopeCLI, Group: groupMode, Help: "Show the version and exit (also -v)",
		set: func(c *Config, _ string, _ bool) error { c.Action = ActionVersion; return nil }},

	// Credentials.
	stringFlag("accessFile", "FILE", "$HOME/.s3backer_passwd", groupAccess, "File of accessID:accessKey lines",
		func(c *Config) *string { return &c.AccessFile }),
	stringFlag("accessId", "ID", "first entry of accessFile", groupAccess, "S3 access key ID (empty: anonymous)",
		func(c *Config) *string { return &c.AccessID }),
	stringFlag("accessKey", "KEY", "", groupAccess, "S3 secret access key (prefer --accessKeyEnv or --accessFile)",
		func(c *Config) *string { return &c.AccessKey }),
	stringFlag("accessKeyEnv", "VARNAME", "", groupAccess, "Read the secret access key from environment variable VARNAME",
		func(c *Config) *string { return &c.AccessKeyEnv }),
	enumFlag("accessType", "TYPE", DefaultAccessType, accessTypes, groupAccess, "ACL of new objects",
		func(c *Config) *string { return &c.AccessType }),
	{Name: "accessEC2IAM", Kind: KindOptional, Type: TypeString, Arg: "ROLE", Scope: ScopeAll, Group: groupAccess,
		Help: "Get credentials from EC2 instance metadata for IAM role ROLE (bare: the instance's role)",
		set:  setAccessEC2IAM},
	boolFlag("accessEC2IAM-IMDSv2", ScopeAll, groupAccess, "Use IMDSv2 session tokens for --accessEC2IAM",
		func(c *Config) *bool { return &c.AccessEC2IAMIMDSv2 }),
	enumFlag("authVersion", "TYPE", DefaultAuthVersion, authVersions, groupAccess, "Request signing scheme",
		func(c *Config) *string { return &c.AuthVersion }),

	// Endpoint and HTTP.
	stringFlag("baseURL", "URL", "http://s3.amazonaws.com/", groupHTTP, "Base URL of the S3 service; must end in '/'",
		func(c *Config) *string { return &c.BaseURL }),
	{Name: "region", Kind: KindValue, Type: TypeString, Arg: "REGION", Default: DefaultRegion, Scope: ScopeAll,
		Group: groupHTTP, Help: "AWS region; giving it also turns on --vhost (unless --no-vhost)",
		set: func(c *Config, v string, _ bool) error {
			if v == "" {
				return fmt.Errorf("empty region")
			}
			c.Region = v
			return nil
		}},
	{Name: "vhost", Kind: KindBool, Scope: ScopeAll, Group: groupHTTP, Help: "Virtual-host style URLs (http://bucket.host/key)",
		set: func(c *Config, _ string, _ bool) error { c.Vhost, c.NoVhost = true, false; return nil }},
	{Name: "no-vhost", Kind: KindBool, Scope: ScopeAll, Group: groupHTTP, Help: "Path style URLs (the default), even with --region",
		set: func(c *Config, _ string, _ bool) error { c.Vhost, c.NoVhost = false, true; return nil }},
	boolFlag("ssl", ScopeAll, groupHTTP, "Use https for the default base URL (the default is plain http)",
		func(c *Config) *bool { return &c.SSL }),
	stringFlag("cacert", "FILE", "", groupHTTP, "CA certificates for verifying the server",
		func(c *Config) *string { return &c.CACert }),
	boolFlag("insecure", ScopeAll, groupHTTP, "Do not verify the server's TLS certificate",
		func(c *Config) *bool { return &c.Insecure }),
	boolFlag("http11", ScopeAll, groupHTTP, "Restrict to HTTP/1.1",
		func(c *Config) *bool { return &c.HTTP11 }),
	boolFlag("noCurlCache", ScopeAll, groupHTTP, "Do not reuse HTTP connections (debugging)",
		func(c *Config) *bool { return &c.NoCurlCache }),
	{Name: "ipTOS", Kind: KindValue, Type: TypeString, Arg: "VALUE", Scope: ScopeAll, Group: groupHTTP,
		Help: "IP type of service: lowdelay, throughput, reliability, lowcost, mincost or 0-255",
		set: func(c *Config, v string, _ bool) (err error) {
			c.IPTOS, err = parseIPTOS(v)
			return err
		}},
	secondsFlag("timeout", "30", groupHTTP, "Time limit for one HTTP attempt",
		func(c *Config) *time.Duration { return &c.Timeout }),
	millisFlag("initialRetryPause", "200", groupHTTP, "Pause before the first retry of a failed request",
		func(c *Config) *time.Duration { return &c.InitialRetryPause }),
	millisFlag("maxRetryPause", "30000", groupHTTP, "Total retry pause before a request fails",
		func(c *Config) *time.Duration { return &c.MaxRetryPause }),
	sizeFlag("maxUploadSpeed", "BITSPERSEC", "unlimited", groupHTTP, "Upload limit per request, in bits/s (e.g. 10m)",
		func(c *Config) *int64 { return &c.MaxUploadSpeed }),
	sizeFlag("maxDownloadSpeed", "BITSPERSEC", "unlimited", groupHTTP, "Download limit per request, in bits/s",
		func(c *Config) *int64 { return &c.MaxDownloadSpeed }),
	enumFlag("storageClass", "CLASS", "", storageClasses, groupHTTP, "Storage class of written blocks",
		func(c *Config) *string { return &c.StorageClass }),
	enumFlag("sse", "TYPE", "", sseTypes, groupHTTP, "Server-side encryption",
		func(c *Config) *string { return &c.SSE }),
	stringFlag("sse-key-id", "ID", "", groupHTTP, "KMS key ID, required with --sse=aws:kms",
		func(c *Config) *string { return &c.SSEKeyID }),

	// Disk layout.
	stringFlag("prefix", "STRING", "", groupLayout, "Prefix of object names (or give bucket/subdir)",
		func(c *Config) *string { return &c.Prefix }),
	boolFlag("blockHashPrefix", ScopeAll, groupLayout, "Prepend a hash of the block number to object names",
		func(c *Config) *bool { return &c.BlockHashPrefix }),
	withSet(sizeFlag("blockSize", "SIZE", "auto-detected, else 4k", groupLayout, "Block size, a power of two",
		func(c *Config) *int64 { return &c.blockSizeFlag }),
		func(c *Config) { c.BlockSize = c.blockSizeFlag }),
	withSet(sizeFlag("size", "SIZE", "auto-detected", groupLayout, "Disk size, a multiple of the block size",
		func(c *Config) *int64 { return &c.sizeFlag }),
		func(c *Config) { c.Size = c.sizeFlag }),
	boolFlag("noAutoDetect", ScopeAll, groupLayout, "Do not read size and block size from block 0 (then --size is required)",
		func(c *Config) *bool { return &c.NoAutoDetect }),
	boolFlag("force", ScopeAll, groupLayout, "Proceed despite a size mismatch or another mount; erase without asking",
		func(c *Config) *bool { return &c.Force }),
	boolFlag("readOnly", ScopeAll, groupLayout, "Refuse writes (EROFS); no mounted flag is written",
		func(c *Config) *bool { return &c.ReadOnly }),

	// Compression and encryption.
	{Name: "compress", Kind: KindOptional, Type: TypeString, Arg: "ALG|LEVEL", Scope: ScopeAll, Group: groupCodec,
		Help:    "Compress blocks: deflate (bare --compress), zstd, or a deflate level",
		Choices: compressAlgs, set: setCompress},
	{Name: "compress-level", Kind: KindValue, Type: TypeString, Arg: "LEVEL", Scope: ScopeAll, Group: groupCodec,
		Help: "Compression level (deflate -1..9, zstd up to 22)",
		set:  func(c *Config, v string, _ bool) error { c.compressLevel = v; return nil }},
	{Name: "encrypt", Kind: KindOptional, Type: TypeEnum, Arg: "CIPHER", Default: DefaultCipher + " when bare",
		Scope: ScopeAll, Group: groupCodec, Help: "Encrypt and authenticate blocks; implies --compress. AES-256-GCM is s3backer-go's own (the C s3backer cannot read it)",
		Choices: ciphers, set: setEncrypt},
	countFlag("keyLength", "NUM", "cipher's key length", 64, groupCodec, "Key length override (64 for volumes of s3backer <= 1.3.5)",
		func(c *Config) *int { return &c.KeyLength }),
	stringFlag("password", "PASSWORD", "asked at startup", groupCodec, "Encryption password",
		func(c *Config) *string { return &c.Password }),
	stringFlag("passwordFile", "FILE", "", groupCodec, "Read the encryption password from the first line of FILE",
		func(c *Config) *string { return &c.PasswordFile }),
	stringFlag("defaultContentEncoding", "VALUE", "", groupCodec, "Content-Encoding assumed when the server returns none",
		func(c *Config) *string { return &c.DefaultContentEncoding }),

	// Block cache and read-ahead.
	countFlag("blockCacheSize", "NUM", "1000", maxUint, groupCache, "Block cache size in blocks (0 = no cache)",
		func(c *Config) *int { return &c.BlockCacheSize }),
	countFlag("blockCacheThreads", "NUM", "20", maxUint, groupCache, "Threads writing back and reading ahead",
		func(c *Config) *int { return &c.BlockCacheThreads }),
	millisFlag("blockCacheWriteDelay", "250", groupCache, "Longest time a dirty block waits (0 = write-through)",
		func(c *Config) *time.Duration { return &c.BlockCacheWriteDelay }),
	millisFlag("blockCacheTimeout", "0", groupCache, "Evict clean blocks after this long (0 = never)",
		func(c *Config) *time.Duration { return &c.BlockCacheTimeout }),
	countFlag("blockCacheMaxDirty", "NUM", "0", maxUint, groupCache, "Most dirty blocks at once (0 = no limit)",
		func(c *Config) *int { return &c.BlockCacheMaxDirty }),
	boolFlag("blockCacheSync", ScopeAll, groupCache, "Writes return once stored in S3 (needs --blockCacheWriteDelay=0)",
		func(c *Config) *bool { return &c.BlockCacheSync }),
	stringFlag("blockCacheFile", "FILE", "", groupCache, "Keep the cache in FILE so that it survives restarts",
		func(c *Config) *string { return &c.BlockCacheFile }),
	boolFlag("blockCacheRecoverDirtyBlocks", ScopeAll, groupCache, "Write back dirty blocks found in the cache file",
		func(c *Config) *bool { return &c.BlockCacheRecoverDirtyBlocks }),
	boolFlag("blockCacheNoVerify", ScopeAll, groupCache, "Trust the cache file without checking MD5s with S3",
		func(c *Config) *bool { return &c.BlockCacheNoVerify }),
	boolFlag("blockCacheFileAdvise", ScopeAll, groupCache, "Tell the kernel not to cache the cache file's data",
		func(c *Config) *bool { return &c.BlockCacheFileAdvise }),
	countFlag("blockCacheNumProtected", "NUM", "0", maxUint, groupCache, "Prefer keeping the first NUM blocks cached",
		func(c *Config) *int { return &c.BlockCacheNumProtected }),
	countFlag("readAhead", "NUM", "4", maxUint, groupCache, "Blocks to read ahead at first (doubles while the reader catches up, up to --blockCacheThreads)",
		func(c *Config) *int { return &c.ReadAhead }),
	countFlag("readAheadTrigger", "NUM", "2", maxUint, groupCache, "Sequential block reads that start read-ahead",
		func(c *Config) *int { return &c.ReadAheadTrigger }),

	// Zero blocks, consistency, sharing.
	boolFlag("listBlocks", ScopeAll, groupConsist, "List existing blocks at startup; absent blocks then cost no request",
		func(c *Config) *bool { return &c.ListBlocks }),
	countFlag("listBlocksThreads", "NUM", "16", maxInt, groupConsist, "Threads listing blocks",
		func(c *Config) *int { return &c.ListBlocksThreads }),
	countFlag("md5CacheSize", "NUM", "0", maxUint, groupConsist, "MD5 cache entries (0 = off)",
		func(c *Config) *int { return &c.MD5CacheSize }),
	millisFlag("md5CacheTime", "0", groupConsist, "Lifetime of MD5 cache entries (0 = forever)",
		func(c *Config) *time.Duration { return &c.MD5CacheTime }),
	millisFlag("minWriteDelay", "0", groupConsist, "Shortest time between two writes of one block",
		func(c *Config) *time.Duration { return &c.MinWriteDelay }),
	boolFlag("sharedDiskMode", ScopeAll, groupConsist, "For cluster filesystems: no caches, simultaneous mounts allowed",
		func(c *Config) *bool { return &c.SharedDiskMode }),

	// FUSE file.
	{Name: "filename", Kind: KindValue, Type: TypeString, Arg: "NAME", Default: DefaultFilename, Scope: ScopeFUSE,
		Group: groupFUSE, Help: "Name of the disk file in the mount",
		set: func(c *Config, v string, _ bool) error { c.Filename = v; return nil }},
	{Name: "statsFilename", Kind: KindValue, Type: TypeString, Arg: "NAME", Default: DefaultStatsFilename, Scope: ScopeFUSE,
		Group: groupFUSE, Help: "Name of the statistics file in the mount (empty: none)",
		set: func(c *Config, v string, _ bool) error { c.StatsFilename = v; return nil }},
	{Name: "fileMode", Kind: KindValue, Type: TypeOctal, Arg: "MODE", Default: "0600 (0400 with --readOnly)", Scope: ScopeFUSE,
		Group: groupFUSE, Help: "Permissions of the disk file, in octal",
		set: func(c *Config, v string, _ bool) (err error) {
			c.FileMode, err = parseFileMode(v)
			return err
		}},
	{Name: "directIO", Kind: KindBool, Scope: ScopeFUSE, Group: groupFUSE, Help: "Disable kernel caching of the disk file",
		set: func(c *Config, _ string, _ bool) error { c.DirectIO = true; return nil }},

	// Statistics and logging.
	stringFlag("statsFileMirror", "PATH", "", groupLog, "Rewrite the statistics to PATH periodically",
		func(c *Config) *string { return &c.StatsFileMirror }),
	millisFlag("statsFileMirrorInterval", "1000", groupLog, "Period of --statsFileMirror",
		func(c *Config) *time.Duration { return &c.StatsFileMirrorInterval }),
	{Name: "metricsListen", Kind: KindValue, Type: TypeString, Arg: "ADDR", Scope: ScopeAll, Group: groupLog,
		Help: "Serve Prometheus metrics at http://ADDR/metrics (HOST:PORT, e.g. 127.0.0.1:9350); s3backer-go's own",
		set: func(c *Config, v string, _ bool) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("want HOST:PORT: %w", err)
			}
			c.MetricsListen = v
			return nil
		}},
	boolFlag("debug", ScopeAll, groupLog, "Log debug messages (-d implies it)",
		func(c *Config) *bool { return &c.Debug }),
	boolFlag("debug-http", ScopeAll, groupLog, "Log HTTP request and response headers to standard error",
		func(c *Config) *bool { return &c.DebugHTTP }),
	boolFlag("quiet", ScopeAll, groupLog, "No progress messages at startup",
		func(c *Config) *bool { return &c.Quiet }),
}

var flagIndex = func() map[string]int {
	m := make(map[string]int, len(flagTable))
	for i, f := range flagTable {
		if _, dup := m[f.Name]; dup {
			panic("config: duplicate flag " + f.Name)
		}
		m[f.Name] = i
	}
	return m
}()

// Flags returns the flag table (a copy), grouped in help order.
func Flags() []Flag { return append([]Flag(nil), flagTable...) }

// LookupFlag finds a flag by its exact (case-sensitive) name, without dashes.
func LookupFlag(name string) (Flag, bool) {
	i, ok := flagIndex[name]
	if !ok {
		return Flag{}, false
	}
	return flagTable[i], true
}

func lookup(name string) *Flag {
	if i, ok := flagIndex[name]; ok {
		return &flagTable[i]
	}
	return nil
}

// Constructors for the common shapes.

func boolFlag(name string, scope Scope, group, help string, field func(*Config) *bool) Flag {
	return Flag{Name: name, Kind: KindBool, Type: TypeNone, Scope: scope, Group: group, Help: help,
		set: func(c *Config, _ string, _ bool) error { *field(c) = true; return nil }}
}

func stringFlag(name, arg, def, group, help string, field func(*Config) *string) Flag {
	return Flag{Name: name, Kind: KindValue, Type: TypeString, Arg: arg, Default: def, Scope: ScopeAll, Group: group, Help: help,
		set: func(c *Config, v string, _ bool) error { *field(c) = v; return nil }}
}

func enumFlag(name, arg, def string, choices []string, group, help string, field func(*Config) *string) Flag {
	return Flag{Name: name, Kind: KindValue, Type: TypeEnum, Arg: arg, Default: def, Scope: ScopeAll, Group: group,
		Help: help, Choices: choices,
		set: func(c *Config, v string, _ bool) error {
			for _, ch := range choices {
				if v == ch {
					*field(c) = v
					return nil
				}
			}
			return fmt.Errorf("must be one of %s", strings.Join(choices, ", "))
		}}
}

func countFlag(name, arg, def string, max uint64, group, help string, field func(*Config) *int) Flag {
	return Flag{Name: name, Kind: KindValue, Type: TypeCount, Arg: arg, Default: def, Scope: ScopeAll, Group: group, Help: help,
		set: func(c *Config, v string, _ bool) error {
			n, err := parseUint(v, max)
			if err != nil {
				return err
			}
			*field(c) = int(n)
			return nil
		}}
}

func millisFlag(name, def, group, help string, field func(*Config) *time.Duration) Flag {
	return Flag{Name: name, Kind: KindValue, Type: TypeMillis, Arg: "MILLIS", Default: def, Scope: ScopeAll, Group: group, Help: help,
		set: func(c *Config, v string, _ bool) error {
			n, err := parseUint(v, maxUint)
			if err != nil {
				return err
			}
			*field(c) = time.Duration(n) * time.Millisecond
			return nil
		}}
}

func secondsFlag(name, def, group, help string, field func(*Config) *time.Duration) Flag {
	return Flag{Name: name, Kind: KindValue, Type: TypeSeconds, Arg: "SECONDS", Default: def, Scope: ScopeAll, Group: group, Help: help,
		set: func(c *Config, v string, _ bool) error {
			n, err := parseUint(v, maxUint)
			if err != nil {
				return err
			}
			*field(c) = time.Duration(n) * time.Second
			return nil
		}}
}

func sizeFlag(name, arg, def, group, help string, field func(*Config) *int64) Flag {
	return Flag{Name: name, Kind: KindValue, Type: TypeSize, Arg: arg, Default: def, Scope: ScopeAll, Group: group, Help: help,
		set: func(c *Config, v string, _ bool) error {
			n, err := ParseSize(v)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("must be greater than zero")
			}
			*field(c) = n
			return nil
		}}
}

// withSet runs after as well once f has stored its value.
func withSet(f Flag, after func(*Config)) Flag {
	set := f.set
	f.set = func(c *Config, v string, hasValue bool) error {
		if err := set(c, v, hasValue); err != nil {
			return err
		}
		after(c)
		return nil
	}
	return f
}

// Flags with their own rules.

func setAccessEC2IAM(c *Config, v string, hasValue bool) error {
	if hasValue {
		if v == "" {
			return fmt.Errorf("empty role name (give --accessEC2IAM alone to use the instance's role)")
		}
		c.AccessEC2IAMRole = v
	}
	c.AccessEC2IAM = true
	return nil
}

// setCompress keeps the raw value; Validate resolves it with
// --compress-level and --encrypt regardless of flag order, as s3backer does.
func setCompress(c *Config, v string, hasValue bool) error {
	if !hasValue {
		c.compressBare = true
		return nil
	}
	if v == "" {
		return fmt.Errorf("empty value (want deflate, zstd or a level)")
	}
	if _, isLevel := parseLevel(v); !isLevel && canonicalCompress(v) == "" {
		return fmt.Errorf("unknown compression algorithm (want %s, or a deflate level)", strings.Join(compressAlgs, " or "))
	}
	c.compressArg = v
	return nil
}

// setEncrypt: a bare --encrypt does not override a cipher given elsewhere
// (s3backer keeps them in separate fields).
func setEncrypt(c *Config, v string, hasValue bool) error {
	if !hasValue {
		if c.Encrypt == "" {
			c.Encrypt = DefaultCipher
		}
		return nil
	}
	name := strings.ToUpper(v)
	if _, ok := cipherKeyLens[name]; !ok {
		return fmt.Errorf("unsupported cipher (want %s; case does not matter)", strings.Join(ciphers, ", "))
	}
	c.Encrypt = name
	return nil
}

func canonicalCompress(v string) string {
	for _, a := range compressAlgs {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	return ""
}
