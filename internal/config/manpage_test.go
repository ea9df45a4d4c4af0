package config

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The man page's OPTIONS section is generated from the flag table, so it
// cannot drift from the program: this test fails when it differs, and
//
//	go test ./internal/config -run TestManPage -update
//
// rewrites it. The rest of the page is written by hand.
var updateMan = flag.Bool("update", false, "rewrite the OPTIONS section of docs/s3backer.1")

const (
	manPath  = "../../docs/s3backer.1"
	manBegin = ".\\\" BEGIN GENERATED OPTIONS (go test ./internal/config -run TestManPage -update)\n"
	manEnd   = ".\\\" END GENERATED OPTIONS\n"
)

// roff escapes text for a roff line: backslashes and hyphens, and a
// leading period or quote that would make the line a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// manFlag is one flag's entry: its syntax in bold with the value in
// italics, then its description, values, default and scope.
func manFlag(b *strings.Builder, f Flag) {
	b.WriteString(".TP\n")
	name := roff("--" + f.Name)
	switch f.Kind {
	case KindValue:
		fmt.Fprintf(b, ".BI %s= %s\n", name, roff(f.Arg))
	case KindOptional:
		fmt.Fprintf(b, ".BI %s[= %s ]\n", name, roff(f.Arg))
	default:
		fmt.Fprintf(b, ".B %s\n", name)
	}
	text := f.Help
	if !strings.HasSuffix(text, ".") {
		text += "."
	}
	if len(f.Choices) > 0 {
		text += " Values: " + strings.Join(f.Choices, ", ") + "."
	}
	if f.Default != "" {
		text += " Default: " + f.Default + "."
	}
	switch f.Scope {
	case ScopeFUSE:
		text += " FUSE mode only; ignored with --nbd."
	case ScopeNBD:
		text += " Command line only (not with -o)."
	case ScopeTest:
		text += " Only with --test."
	case ScopeCLI:
		text += " Not an nbdkit plugin parameter."
	}
	b.WriteString(roff(text) + "\n")
}

// manOptions is the generated section: one subsection per help group, in
// the order --help shows them, then the short options.
func manOptions() string {
	var b strings.Builder
	b.WriteString(manBegin)
	for _, g := range groups {
		fmt.Fprintf(&b, ".SS %s\n", roff(g))
		for _, f := range flagTable {
			if f.Group == g {
				manFlag(&b, f)
			}
		}
	}
	b.WriteString(".SS Short options\n")
	for _, o := range shortOptions {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s.\n", roff(o[0]), roff(o[1]))
	}
	b.WriteString(manEnd)
	return b.String()
}

func TestManPage(t *testing.T) {
	page, err := os.ReadFile(manPath)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(page, []byte(manBegin))
	j := bytes.Index(page, []byte(manEnd))
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated OPTIONS markers", manPath)
	}
	want := manOptions()
	if got := string(page[i : j+len(manEnd)]); got != want {
		if !*updateMan {
			t.Fatalf("the OPTIONS section of %s is out of date with the flag table; run\n"+
				"\tgo test ./internal/config -run TestManPage -update", manPath)
		}
		out := append(append(append([]byte(nil), page[:i]...), want...), page[j+len(manEnd):]...)
		if err := os.WriteFile(manPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		page = out
	}
	// The hand-written part names no flag the program does not have.
	text := string(page)
	for _, w := range strings.FieldsFunc(text, func(r rune) bool {
		return !(r == '\\' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		name, ok := strings.CutPrefix(w, `\-\-`)
		if !ok || name == "" {
			continue
		}
		name = strings.ReplaceAll(name, `\-`, "-")
		if _, ok := LookupFlag(name); !ok {
			t.Errorf("the man page mentions --%s, which is no flag", name)
		}
	}
	// It renders without warnings.
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", manPath)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("groff: %v\n%s", err, stderr.String())
		}
	}
}
