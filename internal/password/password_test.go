package password

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/config"
)

func parse(t *testing.T, args ...string) *config.Config {
	t.Helper()
	c, err := config.Parse(append(args, "bucket", "/mnt"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromFile(t *testing.T) {
	long := strings.Repeat("x", 2000)
	for content, want := range map[string]string{
		"secret\n":            "secret",
		"secret\nsecond\n":    "secret",
		"secret":              "secret",   // no newline at the end
		"secret\r\n":          "secret\r", // s3backer strips only \n
		"\n":                  "",
		" spaced out \n":      " spaced out ",
		"nul\x00after\n":      "nul", // a C string ends there
		long + "\n":           long[:maxLine],
		long[:1022] + "\nnxt": long[:1022],
	} {
		got, err := FromFile(writeFile(t, content))
		if err != nil || string(got) != want {
			t.Errorf("%.20q: %.20q, %v; want %.20q", content, got, err, want)
		}
	}
	if _, err := FromFile(writeFile(t, "")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := FromFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestFromConfig(t *testing.T) {
	// Not a terminal: the prompt refuses with a clear error.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	var out bytes.Buffer
	term := &Terminal{In: devnull, Out: &out}

	pw, err := FromConfig(parse(t), term)
	if pw != nil || err != nil {
		t.Errorf("without --encrypt: %q, %v", pw, err)
	}
	pw, err = FromConfig(parse(t, "--encrypt", "--password=s3cret"), term)
	if string(pw) != "s3cret" || err != nil {
		t.Errorf("--password: %q, %v", pw, err)
	}
	pw, err = FromConfig(parse(t, "--encrypt", "--password="), term)
	if pw == nil || len(pw) != 0 || err != nil {
		t.Errorf("--password=: %q, %v", pw, err)
	}
	pw, err = FromConfig(parse(t, "--encrypt=AES-256-CBC", "--passwordFile="+writeFile(t, "fromfile\n")), term)
	if string(pw) != "fromfile" || err != nil {
		t.Errorf("--passwordFile: %q, %v", pw, err)
	}
	_, err = FromConfig(parse(t, "--encrypt"), term)
	if err == nil || !strings.Contains(err.Error(), "--passwordFile") || !strings.Contains(err.Error(), "not a terminal") {
		t.Errorf("no password, no terminal: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("prompted without a terminal: %q", out.String())
	}
}
