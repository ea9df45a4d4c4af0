package config

import (
	"strings"
)

// PluginParamPrefix may start any plugin parameter name, to keep it apart
// from nbdkit's own (s3b_force=true).
const PluginParamPrefix = "s3b_"

// ParseParams builds a Config from nbdkit plugin parameters, in order, as
// s3backer's plugin does (§10.4): an optional "s3b_" prefix is dropped;
// "bucket" (nbdkit's magic key) gives BUCKET[/subdir]; a boolean flag takes
// true or false (false = not given); a value flag its value; compress,
// encrypt and accessEC2IAM are booleans when the value is true or false.
// Unknown names are an error with the prefix and ignored without it (they
// may be meant for nbdkit; Warnings lists them). Flags of the binary only
// (--nbd*, --erase, --reset-mounted-flag, --help, --version) are refused.
// A config file's FUSE options and mount point are ignored. Read-ahead
// defaults to 0, as with --nbd.
func ParseParams(params [][2]string) (*Config, error) {
	p := &parser{cfg: newConfig(), plugin: true}
	var toks []token
	var bucket *string
	for _, kv := range params {
		key, value := kv[0], kv[1]
		name, prefixed := key, false
		if len(key) > len(PluginParamPrefix) && strings.HasPrefix(key, PluginParamPrefix) {
			name, prefixed = key[len(PluginParamPrefix):], true
		}
		if name == "bucket" {
			if bucket != nil {
				return nil, errAt("", "duplicate %q parameter", key)
			}
			bucket = &value
			continue
		}
		f := lookup(name)
		if f == nil {
			if prefixed {
				return nil, errAt("", "unknown s3backer parameter %q%s", key, strings.Replace(suggest(name), "--", PluginParamPrefix, 1))
			}
			p.warnings = append(p.warnings, "ignoring unknown parameter "+key)
			continue
		}
		if f.Scope == ScopeNBD || f.Scope == ScopeCLI {
			return nil, errAt("", "%s=%s: not allowed in the nbdkit plugin", key, value)
		}
		isBool := f.Kind == KindBool ||
			f.Kind == KindOptional && (strings.EqualFold(value, "true") || strings.EqualFold(value, "false"))
		switch {
		case !isBool:
			toks = append(toks, token{text: "--" + name + "=" + value})
		case strings.EqualFold(value, "true"):
			toks = append(toks, token{text: "--" + name})
		case strings.EqualFold(value, "false"):
		default:
			return nil, errAt("", "%s=%s: boolean parameter, want true or false", key, value)
		}
	}
	if bucket != nil {
		toks = append(toks, token{text: "--"}, token{text: *bucket})
	}
	return p.run(toks)
}

// NBDKitParams returns the nbdkit plugin parameters equivalent to an
// s3backer --nbd command line (args without the program name, already
// accepted by Parse), as s3backer's wrapper builds them: each
// --flag[=value] becomes s3b_flag=value (=true without a value) except the
// --nbd flags themselves; -d becomes s3b_debug=true and -f is dropped; a
// config file is passed by name, so the plugin reads it itself and secrets
// in it stay off nbdkit's command line; the bucket operand, when given on
// the command line, becomes bucket=BUCKET (last, as s3backer puts it).
func NBDKitParams(args []string) []string {
	var params, operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case a == "-f":
		case a == "-d":
			params = append(params, PluginParamPrefix+"debug=true")
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			if f := lookup(name); f != nil && f.Scope == ScopeNBD {
				continue
			}
			if !hasValue {
				value = "true"
			}
			params = append(params, PluginParamPrefix+name+"="+value)
		default:
			operands = append(operands, a)
		}
	}
	// Both operands on the command line: BUCKET TARGET. With one, the
	// bucket comes from a config file, which the plugin reads.
	if len(operands) == 2 {
		params = append(params, "bucket="+operands[0])
	}
	return params
}
