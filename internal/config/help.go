package config

import (
	"fmt"
	"strings"
)

// Version is this build's version, set at link time:
//
//	go build -ldflags "-X github.com/s3backer-go/s3backer/internal/config.Version=1.2.3"
var Version = "dev"

// VersionString is what --version prints.
func VersionString() string {
	return "s3backer-go " + Version + " (compatible with s3backer 2.1.x)"
}

const helpUsage = `Usage:
  s3backer [options] bucket[/subdir] /mount/point
  s3backer --nbd [options] bucket[/subdir] /dev/nbdX | nbd://HOST[:PORT] | nbd+unix:///?socket=PATH
  s3backer --test [options] directory /mount/point
  s3backer --erase [options] bucket[/subdir]
  s3backer --reset-mounted-flag [options] bucket[/subdir]

Every --flag[=VALUE] may also be given as -o flag[=VALUE] (several, comma-
separated), except --nbd*. With --nbd only --flags, -f and -d are allowed.
Sizes are integers with an optional k, m, g, t, p or e suffix (powers of 1024).
Flags shown without a default are off or unset unless given.
`

// shortOptions are the single-dash flags (FUSE's and s3backer's).
var shortOptions = [][2]string{
	{"-f", "Run in the foreground; log to standard error"},
	{"-d", "FUSE debug mode; implies -f and --debug"},
	{"-s", "Single-threaded FUSE"},
	{"-o OPT[,OPT...]", "s3backer flags, or FUSE mount options (allow_other, uid=N, ...)"},
	{"-F FILE", "Same as --configFile=FILE"},
	{"-h, -?", "Same as --help"},
	{"-v", "Same as --version"},
}

// Help is the text --help prints: usage, then every flag grouped by topic
// with a one-line description and its default.
func Help() string {
	var b strings.Builder
	b.WriteString(helpUsage)
	width := 0
	for _, f := range flagTable {
		width = max(width, len(flagSyntax(f)))
	}
	for _, g := range groups {
		fmt.Fprintf(&b, "\n%s:\n", g)
		for _, f := range flagTable {
			if f.Group != g {
				continue
			}
			line := f.Help
			if len(f.Choices) > 0 && f.Type == TypeEnum {
				line += " (" + strings.Join(f.Choices, ", ") + ")"
			}
			if f.Default != "" {
				line += " [default: " + f.Default + "]"
			}
			writeWrapped(&b, width, flagSyntax(f), line)
		}
	}
	b.WriteString("\nShort options:\n")
	for _, o := range shortOptions {
		writeWrapped(&b, width, o[0], o[1])
	}
	return b.String()
}

// helpWidth is where Help wraps descriptions.
const helpWidth = 100

// writeWrapped writes "  NAME  DESCRIPTION", the description wrapped at
// helpWidth columns and continued under itself.
func writeWrapped(b *strings.Builder, width int, name, desc string) {
	indent := strings.Repeat(" ", width+4)
	fmt.Fprintf(b, "  %-*s  ", width, name)
	col := width + 4
	for i, w := range strings.Fields(desc) {
		if i > 0 && col+1+len(w) > helpWidth {
			b.WriteString("\n" + indent)
			col = len(indent)
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteByte('\n')
}

// flagSyntax is "--name", "--name=ARG" or "--name[=ARG]".
func flagSyntax(f Flag) string {
	switch f.Kind {
	case KindValue:
		return "--" + f.Name + "=" + f.Arg
	case KindOptional:
		return "--" + f.Name + "[=" + f.Arg + "]"
	}
	return "--" + f.Name
}
