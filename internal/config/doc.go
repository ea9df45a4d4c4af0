// Package config parses and validates s3backer's command line: the same
// flags, -o options, config files and operands as the C s3backer 2.1.x, so
// an existing command line, fstab entry or --configFile works unchanged.
//
// The flow for the binary is:
//
//	cfg, err := config.Parse(os.Args[1:])  // syntax, values, cross-flag checks
//	switch cfg.Action { case config.ActionHelp: ...; case config.ActionVersion: ... }
//	err = cfg.CheckImplemented()           // features not written yet
//	... auto-detect size and block size from block 0 (unless !cfg.AutoDetect()) ...
//	warnings, err := cfg.Finish(detectedSize, detectedBlockSize)
//
// The nbdkit plugin uses ParseParams instead of Parse. The flag table
// (Flags, LookupFlag) is exported so that the plugin and the --nbd wrapper
// can translate flags to and from nbdkit parameters.
//
// Why not spf13/pflag: s3backer's syntax is libfuse's fuse_opt, not GNU
// getopt, and pflag fights it at almost every point. pflag accepts
// "--size 1t" (s3backer does not: "1t" is an operand there), accepts
// "--readOnly=false" for booleans (s3backer: an error), needs extra
// machinery for optional values (--compress[=ALG]), knows nothing of
// "-o a,b=c" option groups whose unknown members are FUSE mount options,
// nor of "-oa,b", "-?", config files spliced in place, or the rule that
// only --doubleDash flags, -f and -d may appear with --nbd. Bending pflag
// to all of that would be more code than the small table-driven parser
// here, and would leave error messages we do not control. So this package
// depends on the standard library only.
//
// Deliberate differences from s3backer 2.1.x (most accept more, or fail
// earlier with a clearer message):
//   - Sizes may be plain integers ("--blockSize=4096"); overflow is an error.
//   - Counts and milliseconds must be plain decimal integers ("-1" and
//     "12abc" are refused; C's %u took them).
//   - "--compress --compress-level=N" means deflate at level N.
//   - --encrypt takes AES-128-CBC, AES-192-CBC or AES-256-CBC only (any
//     case); other OpenSSL names either do not round-trip (§14.4) or are not
//     implemented. It also takes AES-256-GCM, our own extension, which
//     s3backer cannot read (docs/encryption.md); --keyLength is refused
//     with it.
//   - A bare --accessEC2IAM (no ROLE) means: use the instance's role.
//   - --nbd may appear anywhere on the command line, and flags may follow
//     the operands with --nbd too; -h, -? and -v print help or version
//     even with --nbd (s3backer prints usage after "invalid flag").
//   - The --test directory need not be absolute; the caller resolves it.
//   - Unknown --flags get a "did you mean" hint; an -o option that differs
//     from a flag only by case still goes to FUSE, with a warning.
//   - A config file loop is reported with its chain; nesting is limited to
//     100 levels (s3backer: 100 inclusions in total). "-o a,configFile=F,b"
//     splices F between a and b (s3backer: after b).
//   - --filename and --statsFilename must differ.
package config
