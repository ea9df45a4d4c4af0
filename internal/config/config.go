package config

import (
	"fmt"
	"io/fs"
	"time"
)

// Action says what the binary should do after parsing.
type Action int

const (
	// ActionRun: mount, serve, erase or reset, as the Config says.
	ActionRun Action = iota
	// ActionHelp: print Help() to standard output and exit 0.
	ActionHelp
	// ActionVersion: print VersionString() and exit 0.
	ActionVersion
)

// Setting is one flag occurrence, in the order it was seen (config files
// expanded in place). Name is the flag's table name without dashes
// ("blockSize"), a short flag with its dash ("-f", "-d", "-s"), or "-o" for
// a FUSE mount option (Value is then the option, e.g. "allow_other").
type Setting struct {
	Name     string
	Value    string
	HasValue bool
	// Where is "" for the command line or an nbdkit parameter, else
	// "FILE:LINE" of the config file line it came from.
	Where string
}

// Config is a parsed s3backer command line. Durations are time.Duration
// throughout; sizes are bytes (speeds bits per second); counts are int.
// Zero values mean "not given" where the flag has no default.
type Config struct {
	// Action is ActionHelp or ActionVersion when -h/--help or -v/--version
	// was given; the rest of the Config is then defaults only.
	Action Action

	// Operands.
	//
	// BucketArg is the first operand as given ("bucket/sub/dir", or the
	// directory with --test). Bucket is the bucket name (with --test: the
	// directory, as given; the caller makes it absolute). Prefix is the
	// object-name prefix: --prefix verbatim, or "sub/dir/" from BucketArg.
	BucketArg string
	Bucket    string
	Prefix    string
	// Target is the second operand: the FUSE mount point, or with --nbd the
	// device or URI to serve (/dev/nbd0, nbd://127.0.0.1:10809,
	// nbd+unix:///?socket=/path). Empty with --erase, --reset-mounted-flag
	// and in the nbdkit plugin.
	Target string

	// Modes.
	NBD              bool // --nbd: serve the disk over NBD (command line only)
	Plugin           bool // parsed by ParseParams for the nbdkit plugin
	Test             bool // --test: Bucket is a local directory
	TestErrors       bool // --test-errors
	TestDelays       bool // --test-delays
	TestDiscard      bool // --test-discard
	Erase            bool // --erase
	ResetMountedFlag bool // --reset-mounted-flag
	NBDFlags         []string
	NBDParams        []string

	// FUSE and process.
	Foreground     bool     // -f or -d
	FuseDebug      bool     // -d (also sets Debug)
	SingleThreaded bool     // -s
	FuseOptions    []string // -o options that are not s3backer flags, in order
	Filename       string
	StatsFilename  string
	FileMode       fs.FileMode
	DirectIO       bool

	// Credentials and S3 access.
	AccessFile         string // "" = $HOME/.s3backer_passwd (unless EC2 IAM)
	AccessID           string // IsSet("accessId") with "" forces anonymous
	AccessKey          string
	AccessKeyEnv       string
	AccessType         string
	AccessEC2IAM       bool   // --accessEC2IAM[=ROLE]
	AccessEC2IAMRole   string // "" with AccessEC2IAM: discover the role
	AccessEC2IAMIMDSv2 bool
	AuthVersion        string

	// Endpoint and HTTP.
	BaseURL           string // as given; see ResolvedBaseURL
	Region            string
	Vhost             bool // --vhost (the later of --vhost/--no-vhost wins)
	NoVhost           bool // --no-vhost
	SSL               bool
	CACert            string
	Insecure          bool
	HTTP11            bool
	NoCurlCache       bool
	IPTOS             int // -1 = not set
	Timeout           time.Duration
	InitialRetryPause time.Duration
	MaxRetryPause     time.Duration
	MaxUploadSpeed    int64 // bits per second, 0 = unlimited
	MaxDownloadSpeed  int64
	SSE               string
	SSEKeyID          string
	StorageClass      string

	// Disk layout. Size and BlockSize are 0 until given or until Finish.
	BlockHashPrefix bool
	BlockSize       int64
	Size            int64
	NoAutoDetect    bool
	Force           bool

	// Object encoding. Compress is "" (off), "deflate" or "zstd"; it is
	// "deflate" when encrypting without --compress. CompressLevel is the
	// level to use (the algorithm's default unless given). Encrypt is the
	// canonical cipher name ("AES-128-CBC", or our "AES-256-GCM") or ""
	// (off).
	Compress               string
	CompressLevel          int
	Encrypt                string
	KeyLength              int
	Password               string
	PasswordFile           string
	DefaultContentEncoding string

	ReadOnly          bool
	ListBlocks        bool
	ListBlocksThreads int

	// Block cache and read-ahead.
	BlockCacheSize               int
	BlockCacheThreads            int
	BlockCacheWriteDelay         time.Duration
	BlockCacheTimeout            time.Duration
	BlockCacheMaxDirty           int
	BlockCacheSync               bool
	BlockCacheFile               string
	BlockCacheRecoverDirtyBlocks bool
	BlockCacheNoVerify           bool
	BlockCacheFileAdvise         bool
	BlockCacheNumProtected       int
	ReadAhead                    int
	ReadAheadTrigger             int

	// MD5 cache (eventual-consistency protection), shared disk mode.
	MD5CacheSize   int
	MD5CacheTime   time.Duration
	MinWriteDelay  time.Duration
	SharedDiskMode bool

	// Statistics and logging.
	StatsFileMirror         string
	StatsFileMirrorInterval time.Duration
	MetricsListen           string // s3backer-go's own: host:port of /metrics
	Debug                   bool
	DebugHTTP               bool
	Quiet                   bool

	// Warnings are non-fatal problems found while parsing (s3backer warns
	// about the same things); the caller prints them unless Quiet.
	Warnings []string

	set           map[string]bool
	settings      []Setting
	parseWarnings []string

	// Raw values resolved by Validate, kept so that it is idempotent and
	// independent of flag order (as s3backer is).
	compressBare  bool   // --compress
	compressArg   string // --compress=X
	compressLevel string // --compress-level=L
	sizeFlag      int64  // --size as given (Size becomes the effective one)
	blockSizeFlag int64  // --blockSize as given
	numBlocks     uint64 // set by Finish
}

// Defaults of the flags (s3b_config.c of 2.1.x; see the flag table).
const (
	DefaultBlockSize               = 4096
	DefaultAccessType              = "private"
	DefaultAuthVersion             = "aws4"
	DefaultRegion                  = "us-east-1"
	DefaultFilename                = "file"
	DefaultStatsFilename           = "stats"
	DefaultFileMode                = fs.FileMode(0o600)
	DefaultFileModeReadOnly        = fs.FileMode(0o400)
	DefaultTimeout                 = 30 * time.Second
	DefaultInitialRetryPause       = 200 * time.Millisecond
	DefaultMaxRetryPause           = 30000 * time.Millisecond
	DefaultBlockCacheSize          = 1000
	DefaultBlockCacheThreads       = 20
	DefaultBlockCacheWriteDelay    = 250 * time.Millisecond
	DefaultReadAhead               = 4
	DefaultReadAheadTrigger        = 2
	DefaultListBlocksThreads       = 16
	DefaultStatsFileMirrorInterval = 1000 * time.Millisecond
	DefaultCipher                  = "AES-128-CBC"
	DefaultDeflateLevel            = -1 // zlib Z_DEFAULT_COMPRESSION (= 6)
	DefaultZstdLevel               = 3
)

// GCMCipher is --encrypt's AEAD mode, our extension: s3backer cannot read
// such disks (docs/encryption.md).
const GCMCipher = "AES-256-GCM"

// newConfig returns a Config holding every default (FUSE mode; the NBD
// read-ahead defaults are applied once the mode is known).
func newConfig() *Config {
	return &Config{
		AccessType:              DefaultAccessType,
		AuthVersion:             DefaultAuthVersion,
		Region:                  DefaultRegion,
		Filename:                DefaultFilename,
		StatsFilename:           DefaultStatsFilename,
		FileMode:                DefaultFileMode,
		IPTOS:                   -1,
		Timeout:                 DefaultTimeout,
		InitialRetryPause:       DefaultInitialRetryPause,
		MaxRetryPause:           DefaultMaxRetryPause,
		BlockCacheSize:          DefaultBlockCacheSize,
		BlockCacheThreads:       DefaultBlockCacheThreads,
		BlockCacheWriteDelay:    DefaultBlockCacheWriteDelay,
		ReadAhead:               DefaultReadAhead,
		ReadAheadTrigger:        DefaultReadAheadTrigger,
		ListBlocksThreads:       DefaultListBlocksThreads,
		StatsFileMirrorInterval: DefaultStatsFileMirrorInterval,
		set:                     map[string]bool{},
	}
}

// IsSet reports whether a flag was given explicitly, by its table name
// ("blockSize", "readAhead") or as a short flag ("-f", "-d", "-s"); "-o"
// means at least one FUSE mount option was given.
func (c *Config) IsSet(name string) bool { return c.set[name] }

// Settings returns every flag occurrence in order (see Setting).
func (c *Config) Settings() []Setting { return append([]Setting(nil), c.settings...) }

// IsNBD reports whether the disk is served over NBD (--nbd or the nbdkit
// plugin) rather than as a FUSE file.
func (c *Config) IsNBD() bool { return c.NBD || c.Plugin }

// IsFUSE reports whether the disk is mounted as a FUSE file.
func (c *Config) IsFUSE() bool { return !c.IsNBD() && !c.Erase && !c.ResetMountedFlag }

// TestDir is the --test directory as given, or "" outside test mode.
func (c *Config) TestDir() string {
	if !c.Test {
		return ""
	}
	return c.Bucket
}

// AutoDetect reports whether size and block size should be read from block
// 0 before calling Finish (s3backer skips it with --test or --noAutoDetect).
func (c *Config) AutoDetect() bool { return !c.Test && !c.NoAutoDetect }

// NumBlocks is Size / BlockSize, valid after a successful Finish.
func (c *Config) NumBlocks() uint64 { return c.numBlocks }

// UseVhost reports whether virtual-host style URLs are used: --vhost, or an
// explicit --region, unless --no-vhost (§1.6).
func (c *Config) UseVhost() bool {
	if c.NoVhost {
		return false
	}
	return c.Vhost || c.IsSet("region")
}

// ResolvedBaseURL is --baseURL, or the default s3backer computes from
// --ssl and an explicit --region (before any vhost rewriting, §1.6).
func (c *Config) ResolvedBaseURL() string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	scheme := "http"
	if c.SSL {
		scheme = "https"
	}
	if c.IsSet("region") && c.Region != DefaultRegion {
		return scheme + "://s3." + c.Region + ".amazonaws.com/"
	}
	return scheme + "://s3.amazonaws.com/"
}

func (c *Config) warnf(format string, args ...any) {
	c.Warnings = append(c.Warnings, fmt.Sprintf(format, args...))
}
