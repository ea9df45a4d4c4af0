package config

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// maxConfigDepth bounds --configFile nesting (s3backer allows 100
// substitutions); a file including itself is reported as a loop first.
const maxConfigDepth = 100

// token is one command-line argument, or one line of a config file.
type token struct {
	text string
	// opts is non-nil for an -o option group, already split and unescaped.
	opts []string
	// include is non-empty for the marker left where a config file was
	// spliced in (so Settings shows --configFile in order).
	include string
	where   string    // "" for the command line, else "FILE:LINE"
	chain   []fileRef // config files this token came through, outermost first
}

type fileRef struct {
	name string
	info os.FileInfo
}

func (t token) inFile() bool { return len(t.chain) > 0 }

// errAt formats an error, prefixed with the config file location if any.
func errAt(where string, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if where == "" {
		return err
	}
	return fmt.Errorf("%s: %w", where, err)
}

// expand splices config files in place (--configFile=F, -F F and
// configFile=F inside an -o group) and splits -o groups into their items.
// Spliced lines are expanded in turn, so nesting works.
func expand(in []token) ([]token, error) {
	var out []token
	for i := 0; i < len(in); i++ {
		t := in[i]
		switch {
		case t.text == "--":
			// Everything after is an operand; leave it alone.
			return append(out, in[i:]...), nil
		case t.text == "--configFile":
			return nil, errAt(t.where, "--configFile requires a value (--configFile=FILE)")
		case strings.HasPrefix(t.text, "--configFile="):
			sub, err := include(t, t.text, strings.TrimPrefix(t.text, "--configFile="))
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case t.text == "-F":
			if i+1 >= len(in) {
				return nil, errAt(t.where, "-F requires a FILE")
			}
			i++
			sub, err := include(t, "-F "+in[i].text, in[i].text)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case t.text == "-o" || strings.HasPrefix(t.text, "-o"):
			group := strings.TrimPrefix(t.text, "-o")
			if t.text == "-o" {
				if i+1 >= len(in) {
					return nil, errAt(t.where, "-o requires an option list (-o name[=value][,...])")
				}
				i++
				group = in[i].text
			}
			var cur []string
			flush := func() {
				if len(cur) > 0 {
					out = append(out, token{text: "-o", opts: cur, where: t.where, chain: t.chain})
					cur = nil
				}
			}
			for _, item := range splitOptions(group) {
				name, file, hasValue := strings.Cut(item, "=")
				if name != "configFile" {
					cur = append(cur, item)
					continue
				}
				if !hasValue {
					return nil, errAt(t.where, "-o configFile requires a value (-o configFile=FILE)")
				}
				flush()
				sub, err := include(t, "-o "+item, file)
				if err != nil {
					return nil, err
				}
				out = append(out, sub...)
			}
			flush()
		default:
			out = append(out, t)
		}
	}
	return out, nil
}

// include reads config file name (named by token t, spelled as written)
// and returns its expanded lines, preceded by a marker token.
func include(t token, spelled, name string) ([]token, error) {
	if name == "" {
		return nil, errAt(t.where, "%s: empty file name", spelled)
	}
	if len(t.chain) >= maxConfigDepth {
		return nil, errAt(t.where, "%s: config files nested more than %d deep", spelled, maxConfigDepth)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, errAt(t.where, "%s: %w", spelled, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, errAt(t.where, "%s: %w", spelled, err)
	}
	if info.IsDir() {
		return nil, errAt(t.where, "%s: %s is a directory", spelled, name)
	}
	for i, ref := range t.chain {
		if os.SameFile(ref.info, info) {
			var names []string
			for _, r := range t.chain[i:] {
				names = append(names, r.name)
			}
			return nil, errAt(t.where, "%s: config file loop: %s -> %s", spelled, strings.Join(names, " -> "), name)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, errAt(t.where, "%s: %w", spelled, err)
	}
	chain := append(append([]fileRef(nil), t.chain...), fileRef{name: name, info: info})
	marker := token{include: name, text: spelled, where: t.where, chain: t.chain}
	var lines []token
	for i, line := range strings.Split(string(data), "\n") {
		// One argument per line, trimmed; internal spaces are part of it.
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		lines = append(lines, token{text: line, where: fmt.Sprintf("%s:%d", name, i+1), chain: chain})
	}
	sub, err := expand(lines)
	if err != nil {
		return nil, err
	}
	return append([]token{marker}, sub...), nil
}

// splitOptions splits an -o group at commas, undoing libfuse's escapes:
// "\," is a literal comma, "\\" a backslash, "\NNN" an octal byte.
func splitOptions(s string) []string {
	var items []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ',':
			items = append(items, b.String())
			b.Reset()
		case c == '\\' && i+1 < len(s):
			i++
			if i+2 < len(s) && s[i] >= '0' && s[i] <= '3' && isOctal(s[i+1]) && isOctal(s[i+2]) {
				b.WriteByte((s[i]-'0')<<6 | (s[i+1]-'0')<<3 | (s[i+2] - '0'))
				i += 2
			} else {
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return append(items, b.String())
}

func isOctal(b byte) bool { return '0' <= b && b <= '7' }
