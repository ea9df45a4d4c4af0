package config

import (
	"regexp"
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	h := Help()
	lines := strings.Split(h, "\n")
	for i, l := range lines {
		if len(l) > helpWidth {
			t.Errorf("help line %d longer than %d: %q", i+1, helpWidth, l)
		}
	}
	for _, f := range Flags() {
		// The flag's entry, with its continuation lines joined.
		line := ""
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), flagSyntax(f)+" ") {
				line = l
				for _, more := range lines[i+1:] {
					if !strings.HasPrefix(more, "          ") { // continuation lines are indented deeply
						break
					}
					line += " " + strings.TrimSpace(more)
				}
			}
		}
		if line == "" {
			t.Errorf("--%s missing from help", f.Name)
			continue
		}
		if f.Default != "" && !strings.Contains(line, "[default: "+f.Default+"]") {
			t.Errorf("--%s: help line lacks its default: %q", f.Name, line)
		}
		if !strings.Contains(line, f.Help) {
			t.Errorf("--%s: help lacks its description: %q", f.Name, line)
		}
	}
	for _, want := range []string{
		"--compress[=ALG|LEVEL]", "--encrypt[=CIPHER]", "--accessEC2IAM[=ROLE]", "--blockSize=SIZE",
		"--readOnly ", "[default: 1000]", "[default: 4]", "(private, public-read",
		"s3backer --nbd [options] bucket[/subdir] /dev/nbdX", "-o OPT[,OPT...]", "-F FILE", "-h, -?",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	// Sections in the order of groups, each non-empty.
	last := -1
	for _, g := range groups {
		i := strings.Index(h, "\n"+g+":\n")
		if i < 0 || i < last {
			t.Errorf("section %q missing or out of order", g)
		}
		last = i
	}
}

func TestVersionString(t *testing.T) {
	old := Version
	defer func() { Version = old }()
	Version = "1.2.3"
	if got, want := VersionString(), "s3backer-go 1.2.3 (compatible with s3backer 2.1.x)"; got != want {
		t.Errorf("VersionString() = %q, want %q", got, want)
	}
	Version = old
	if !regexp.MustCompile(`^s3backer-go \S+ \(compatible with s3backer 2\.1\.x\)$`).MatchString(VersionString()) {
		t.Errorf("VersionString() = %q", VersionString())
	}
}

func TestFlagTable(t *testing.T) {
	for _, f := range Flags() {
		if f.set == nil || f.Help == "" || f.Group == "" {
			t.Errorf("--%s incomplete", f.Name)
		}
		if (f.Kind == KindBool) != (f.Type == TypeNone) {
			t.Errorf("--%s: kind %v with type %v", f.Name, f.Kind, f.Type)
		}
		if f.Kind != KindBool && f.Arg == "" {
			t.Errorf("--%s: no Arg", f.Name)
		}
		if g, ok := LookupFlag(f.Name); !ok || g.Name != f.Name {
			t.Errorf("LookupFlag(%q)", f.Name)
		}
	}
	if _, ok := LookupFlag("blocksize"); ok {
		t.Error("LookupFlag is case-insensitive")
	}
	// The 2.1.x flag list (s3b_config.c option_list, plus the flags main.c
	// and the FUSE option handler take): nothing missing, nothing extra.
	want := strings.Fields(`accessFile accessId accessKey accessKeyEnv accessType accessEC2IAM
		accessEC2IAM-IMDSv2 authVersion listBlocks listBlocksThreads baseURL region sse sse-key-id
		blockCacheSize blockCacheSync blockCacheThreads blockCacheTimeout blockCacheWriteDelay
		blockCacheMaxDirty blockCacheRecoverDirtyBlocks readAhead readAheadTrigger blockCacheNumProtected
		blockCacheFile blockCacheNoVerify blockCacheFileAdvise blockSize maxUploadSpeed maxDownloadSpeed
		md5CacheSize md5CacheTime debug debug-http http11 noCurlCache quiet erase reset-mounted-flag
		vhost no-vhost fileMode filename force noAutoDetect initialRetryPause maxRetryPause minWriteDelay
		blockHashPrefix prefix defaultContentEncoding readOnly size statsFilename statsFileMirror
		statsFileMirrorInterval storageClass ssl cacert insecure compress compress-level encrypt keyLength
		password passwordFile test test-errors test-delays test-discard timeout directIO sharedDiskMode
		ipTOS configFile nbd nbd-flag nbd-param help version`)
	// s3backer-go's own flags.
	ours := []string{"metricsListen"}
	if len(want)+len(ours) != len(flagTable) {
		t.Errorf("table has %d flags, s3backer %d and s3backer-go %d more", len(flagTable), len(want), len(ours))
	}
	for _, n := range append(want, ours...) {
		if _, ok := LookupFlag(n); !ok {
			t.Errorf("--%s missing", n)
		}
	}
	// Kinds that the nbdkit translation depends on.
	for name, kind := range map[string]Kind{"compress": KindOptional, "encrypt": KindOptional,
		"accessEC2IAM": KindOptional, "readOnly": KindBool, "size": KindValue, "configFile": KindValue} {
		if f, _ := LookupFlag(name); f.Kind != kind {
			t.Errorf("--%s kind %v, want %v", name, f.Kind, kind)
		}
	}
	for name, scope := range map[string]Scope{"nbd": ScopeNBD, "nbd-flag": ScopeNBD, "erase": ScopeCLI,
		"help": ScopeCLI, "filename": ScopeFUSE, "test-delays": ScopeTest, "size": ScopeAll} {
		if f, _ := LookupFlag(name); f.Scope != scope {
			t.Errorf("--%s scope %v, want %v", name, f.Scope, scope)
		}
	}
	// Flags() is a copy.
	fl := Flags()
	fl[0].Name = "changed"
	if flagTable[0].Name == "changed" {
		t.Error("Flags() shares the table")
	}
	for _, s := range []string{KindBool.String(), KindValue.String(), KindOptional.String(), TypeSize.String(),
		TypeMillis.String(), ScopeAll.String(), ScopeNBD.String()} {
		if s == "" || strings.Contains(s, "(") {
			t.Errorf("String() = %q", s)
		}
	}
}
