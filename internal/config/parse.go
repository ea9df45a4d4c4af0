package config

import (
	"strings"
)

// parser holds the state of one Parse or ParseParams call.
type parser struct {
	cfg      *Config
	nbd      bool // --nbd on the command line (restricts syntax, see scanNBD)
	plugin   bool // ParseParams: nbdkit plugin rules
	dashdash bool // "--" seen: the rest are operands
	operands []token
	warnings []string
}

// Parse parses s3backer's command line, args without the program name.
//
// It reads config files, checks every value and the combinations of flags
// that can be checked before the disk's size is known, and returns the first
// syntax error or every validation problem (one line each, each naming its
// flag). With -h/--help or -v/--version anywhere on the command line it
// returns at once with Action set and nothing else parsed.
func Parse(args []string) (*Config, error) {
	if a := findAction(args); a != ActionRun {
		c := newConfig()
		c.Action = a
		return c, nil
	}
	nbd, err := scanNBD(args)
	if err != nil {
		return nil, err
	}
	p := &parser{cfg: newConfig(), nbd: nbd}
	toks := make([]token, len(args))
	for i, a := range args {
		toks[i] = token{text: a}
	}
	return p.run(toks)
}

// findAction looks for a help or version flag on the command line: like
// s3backer, these win over any other problem.
func findAction(args []string) Action {
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--":
			return ActionRun
		case "-o", "-F":
			i++ // skip the value
		case "--help", "-h", "-?":
			return ActionHelp
		case "--version", "-v":
			return ActionVersion
		}
	}
	return ActionRun
}

// scanNBD finds --nbd on the command line and, if present, enforces the
// wrapper's syntax: only --doubleDash flags, -f and -d (s3backer
// translates every flag to an nbdkit parameter, which single-dash FUSE
// flags have no equivalent of).
func scanNBD(args []string) (bool, error) {
	nbd := false
	for i := 0; i < len(args) && args[i] != "--"; i++ {
		switch args[i] {
		case "--nbd":
			nbd = true
		case "-o", "-F":
			i++
		}
	}
	if !nbd {
		return false, nil
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if len(a) >= 2 && a[0] == '-' && a[1] != '-' && a != "-f" && a != "-d" {
			return false, errAt("", "%s: not allowed with --nbd (only --doubleDash flags, -f and -d are)", a)
		}
	}
	return true, nil
}

// run expands config files, applies every token, then checks operands
// and flag combinations.
func (p *parser) run(toks []token) (*Config, error) {
	toks, err := expand(toks)
	if err != nil {
		return nil, err
	}
	for _, t := range toks {
		if err := p.token(t); err != nil {
			return nil, err
		}
		if p.cfg.Action != ActionRun { // --help or --version inside a config file
			c := newConfig()
			c.Action = p.cfg.Action
			return c, nil
		}
	}
	if err := p.assignOperands(); err != nil {
		return nil, err
	}
	c := p.cfg
	c.Plugin = p.plugin
	c.parseWarnings = p.warnings
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (p *parser) token(t token) error {
	c := p.cfg
	switch {
	case t.include != "":
		p.record("configFile", t.include, true, t)
	case p.dashdash:
		p.operands = append(p.operands, t)
	case t.opts != nil:
		for _, item := range t.opts {
			if err := p.option(item, t); err != nil {
				return err
			}
		}
	case t.text == "--":
		p.dashdash = true
	case strings.HasPrefix(t.text, "--"):
		name, value, hasValue := strings.Cut(t.text[2:], "=")
		f := lookup(name)
		if f == nil {
			return errAt(t.where, "unknown flag --%s%s", name, suggest(name))
		}
		return p.apply(f, value, hasValue, t.text, t, false)
	case t.text == "-f":
		c.Foreground = true
		p.record("-f", "", false, t)
	case t.text == "-d":
		// FUSE debug; s3backer also turns on --debug and the foreground.
		c.Foreground, c.FuseDebug, c.Debug = true, true, true
		p.record("-d", "", false, t)
	case t.text == "-s":
		c.SingleThreaded = true
		p.record("-s", "", false, t)
	case p.plugin && (t.text == "-h" || t.text == "-?" || t.text == "-v"):
		// Ignored, like the plugin's other FUSE-style flags.
	case t.text == "-h" || t.text == "-?":
		c.Action = ActionHelp
	case t.text == "-v":
		c.Action = ActionVersion
	case strings.HasPrefix(t.text, "-"):
		hint := ""
		if name, _, _ := strings.Cut(t.text[1:], "="); lookup(name) != nil {
			hint = "; did you mean --" + t.text[1:] + "?"
		}
		return errAt(t.where, "unknown flag %s%s", t.text, hint)
	default:
		p.operands = append(p.operands, t)
	}
	return nil
}

// option handles one item of an -o group: an s3backer flag, or else a FUSE
// mount option kept for the FUSE front end.
func (p *parser) option(item string, t token) error {
	if item == "" {
		return nil
	}
	name, value, hasValue := strings.Cut(item, "=")
	f := lookup(name)
	if f == nil {
		p.cfg.FuseOptions = append(p.cfg.FuseOptions, item)
		p.record("-o", item, true, t)
		if s := suggestFold(name); s != "" {
			p.warnings = append(p.warnings, prefixWhere(t.where,
				"-o "+item+": passed to FUSE as a mount option; did you mean "+s+"?"))
		}
		return nil
	}
	if f.Scope == ScopeNBD {
		return errAt(t.where, "-o %s: only allowed on the command line, as --%s", item, f.Name)
	}
	return p.apply(f, value, hasValue, "-o "+item, t, true)
}

// apply checks the flag's syntax and stores its value.
func (p *parser) apply(f *Flag, value string, hasValue bool, spelled string, t token, viaO bool) error {
	c := p.cfg
	if f.Scope == ScopeNBD && t.inFile() {
		if f.Name == "nbd" {
			return errAt(t.where, "--nbd is not allowed in a config file")
		}
		return errAt(t.where, "%s: only allowed on the command line", spelled)
	}
	if p.plugin && (f.Scope == ScopeNBD || f.Scope == ScopeCLI) {
		return errAt(t.where, "%s: not allowed in the nbdkit plugin", spelled)
	}
	switch f.Kind {
	case KindBool:
		if hasValue {
			// The C wrapper accepts --flag=true with --nbd (it becomes the
			// nbdkit parameter flag=true); keep that, nothing else.
			if !(p.nbd && !t.inFile() && !viaO && strings.EqualFold(value, "true")) {
				return errAt(t.where, "%s: takes no value", spelled)
			}
			hasValue, value = false, ""
		}
	case KindValue:
		if !hasValue {
			if viaO {
				return errAt(t.where, "%s: requires a value (-o %s=%s)", spelled, f.Name, f.Arg)
			}
			return errAt(t.where, "%s: requires a value (--%s=%s)", spelled, f.Name, f.Arg)
		}
	}
	if err := f.set(c, value, hasValue); err != nil {
		return errAt(t.where, "%s: %w", spelled, err)
	}
	p.record(f.Name, value, hasValue, t)
	return nil
}

func (p *parser) record(name, value string, hasValue bool, t token) {
	p.cfg.set[name] = true
	p.cfg.settings = append(p.cfg.settings, Setting{Name: name, Value: value, HasValue: hasValue, Where: t.where})
}

// assignOperands: BUCKET[/subdir] (or the --test directory), then the
// mount point or NBD target.
func (p *parser) assignOperands() error {
	c := p.cfg
	ops := p.operands
	if len(ops) > 2 {
		return errAt(ops[2].where, "unexpected extra operand %q", ops[2].text)
	}
	if len(ops) == 0 {
		if c.Test {
			return errAt("", "missing test directory (the first operand with --test)")
		}
		return errAt("", "missing bucket (the first operand: BUCKET[/subdir])")
	}
	c.BucketArg = ops[0].text
	if err := c.splitBucket(ops[0].where); err != nil {
		return err
	}
	switch {
	case p.plugin:
		// The plugin ignores a mount point, so that a config file written
		// for FUSE (with both operands) can be reused.
	case c.Erase || c.ResetMountedFlag:
		flag := "--erase"
		if !c.Erase {
			flag = "--reset-mounted-flag"
		}
		if c.IsNBD() {
			return errAt("", "%s cannot be used with --nbd", flag)
		}
		if len(ops) > 1 {
			return errAt(ops[1].where, "%s takes no mount point (got %q)", flag, ops[1].text)
		}
	case len(ops) < 2:
		if c.IsNBD() {
			return errAt("", "missing NBD device or URI (the second operand, e.g. /dev/nbd0 or nbd://127.0.0.1:10809)")
		}
		return errAt("", "missing mount point (the second operand)")
	case ops[1].text == "":
		return errAt(ops[1].where, "empty mount point")
	default:
		c.Target = ops[1].text
	}
	return nil
}

// splitBucket applies §1.1: "bucket/sub/dir" means bucket "bucket" and
// prefix "sub/dir/". With --test the operand is a directory path, kept as is.
func (c *Config) splitBucket(where string) error {
	arg := c.BucketArg
	if c.Test {
		if arg == "" {
			return errAt(where, "empty test directory")
		}
		c.Bucket = arg
		return nil
	}
	if arg == "" || arg[0] == '/' {
		return errAt(where, "invalid bucket %q", arg)
	}
	bucket, sub, ok := strings.Cut(arg, "/")
	if !ok {
		c.Bucket = arg
		return nil
	}
	if c.Prefix != "" {
		return errAt(where, "bucket %q: a subdirectory cannot be combined with --prefix=%s", arg, c.Prefix)
	}
	if sub == "" || sub[0] == '/' || sub[len(sub)-1] == '/' || strings.Contains(sub, "//") {
		return errAt(where, "invalid bucket/subdir %q: the subdirectory must be non-empty, not start or end with '/', and not contain '//'", arg)
	}
	c.Bucket, c.Prefix = bucket, sub+"/"
	return nil
}

func prefixWhere(where, msg string) string {
	if where == "" {
		return msg
	}
	return where + ": " + msg
}
