package s3

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/config"
)

const accessFileText = `# s3backer access file
 indented:ignored

no-colon-line
AKID1:secret1:with:colons   
AKID2:secret2
#AKID3:commented
`

func parseConfig(t *testing.T, flags ...string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(append(flags, "bucket", "/mnt"))
	if err != nil {
		t.Fatalf("Parse(%q): %v", flags, err)
	}
	return cfg
}

// env is a fake environment for ResolveCredentials.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

func TestParseAccessFile(t *testing.T) {
	got, err := parseAccessFile(strings.NewReader(accessFileText))
	if err != nil {
		t.Fatal(err)
	}
	want := []accessEntry{{"AKID1", "secret1:with:colons"}, {"AKID2", "secret2"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("entries %q, want %q", got, want)
	}
}

func TestResolveCredentials(t *testing.T) {
	withFile := t.TempDir()
	if err := os.WriteFile(filepath.Join(withFile, DefaultAccessFile), []byte(accessFileText), 0o600); err != nil {
		t.Fatal(err)
	}
	custom := filepath.Join(t.TempDir(), "custom")
	if err := os.WriteFile(custom, []byte("CUSTOMID:customkey\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noFile := t.TempDir()

	cases := []struct {
		name    string
		flags   []string
		env     env
		want    Credentials
		wantErr []string
	}{
		{"nothing at all: SDK default chain", nil, env{"HOME": noFile},
			Credentials{Mode: CredentialsDefaultChain}, nil},
		{"no HOME: SDK default chain", nil, env{},
			Credentials{Mode: CredentialsDefaultChain}, nil},
		{"first entry of the default file", nil, env{"HOME": withFile},
			Credentials{Mode: CredentialsStatic, AccessID: "AKID1", AccessKey: "secret1:with:colons"}, nil},
		{"id looked up in the file", []string{"--accessId=AKID2"}, env{"HOME": withFile},
			Credentials{Mode: CredentialsStatic, AccessID: "AKID2", AccessKey: "secret2"}, nil},
		{"id missing from the file", []string{"--accessId=AKID3"}, env{"HOME": withFile},
			Credentials{}, []string{`"AKID3"`, DefaultAccessFile, "--accessKey"}},
		{"id without key and no file", []string{"--accessId=X"}, env{"HOME": noFile},
			Credentials{}, []string{`"X"`, "--accessKey"}},
		{"id and key flags", []string{"--accessId=X", "--accessKey=Y"}, env{"HOME": withFile},
			Credentials{Mode: CredentialsStatic, AccessID: "X", AccessKey: "Y"}, nil},
		{"key from the environment", []string{"--accessId=X", "--accessKeyEnv=MY_KEY"}, env{"HOME": noFile, "MY_KEY": "from-env"},
			Credentials{Mode: CredentialsStatic, AccessID: "X", AccessKey: "from-env"}, nil},
		{"environment variable unset", []string{"--accessId=X", "--accessKeyEnv=MY_KEY"}, env{"HOME": noFile},
			Credentials{}, []string{"MY_KEY", "not set"}},
		{"key flag, id from the file", []string{"--accessKey=Y"}, env{"HOME": withFile},
			Credentials{Mode: CredentialsStatic, AccessID: "AKID1", AccessKey: "Y"}, nil},
		{"key flag without any id", []string{"--accessKey=Y"}, env{"HOME": noFile},
			Credentials{}, []string{"--accessId"}},
		{"explicit empty id: anonymous", []string{"--accessId="}, env{"HOME": withFile},
			Credentials{Mode: CredentialsAnonymous}, nil},
		{"explicit access file", []string{"--accessFile=" + custom}, env{"HOME": withFile},
			Credentials{Mode: CredentialsStatic, AccessID: "CUSTOMID", AccessKey: "customkey"}, nil},
		{"explicit access file missing", []string{"--accessFile=" + custom + ".nope"}, env{"HOME": withFile},
			Credentials{}, []string{"--accessFile", "no such file"}},
		{"EC2 IAM role", []string{"--accessEC2IAM=myrole", "--accessEC2IAM-IMDSv2"},
			env{"HOME": withFile, "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1/"},
			Credentials{Mode: CredentialsEC2IAM, Role: "myrole", IMDSv2: true, IMDSEndpoint: "http://127.0.0.1:1/"}, nil},
		{"EC2 IAM, role discovered", []string{"--accessEC2IAM"}, env{"HOME": withFile},
			Credentials{Mode: CredentialsEC2IAM}, nil},
		{"EC2 IAM with a key", []string{"--accessEC2IAM", "--accessKey=Y"}, env{"HOME": noFile},
			Credentials{}, []string{"--accessEC2IAM"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResolveCredentials(parseConfig(t, c.flags...), c.env.lookup)
			if c.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// isolateAWSEnv points every place the SDK looks for settings at nothing
// and routes its metadata and endpoint variables to trap, which fails the
// test if anything arrives there.
func isolateAWSEnv(t *testing.T) (trapHits *atomic.Int64) {
	t.Helper()
	hits := new(atomic.Int64)
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "trap", http.StatusTeapot)
	}))
	t.Cleanup(trap.Close)
	home := t.TempDir()
	for k, v := range map[string]string{
		"HOME":                              home,
		"AWS_CONFIG_FILE":                   filepath.Join(home, "nope-config"),
		"AWS_SHARED_CREDENTIALS_FILE":       filepath.Join(home, "nope-credentials"),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": trap.URL,
		"AWS_EC2_METADATA_DISABLED":         "false",
		"AWS_ENDPOINT_URL":                  trap.URL,
		"AWS_ENDPOINT_URL_S3":               trap.URL,
		"AWS_ACCESS_KEY_ID":                 "",
		"AWS_SECRET_ACCESS_KEY":             "",
		"AWS_PROFILE":                       "",
		"AWS_REGION":                        "",
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_REGION"} {
		os.Unsetenv(k) // t.Setenv above restores them afterwards
	}
	return hits
}

// TestExplicitCredentialsStayLocal: with explicit keys nothing but the
// endpoint is contacted, even with IMDS enabled and AWS_ENDPOINT_URL set.
func TestExplicitCredentialsStayLocal(t *testing.T) {
	o, srv := gwOptions(t)
	hits := isolateAWSEnv(t)
	cfg := parseConfig(t, "--accessId="+srv.AccessKey, "--accessKey="+srv.SecretKey, "--baseURL="+srv.URL, "--no-vhost")
	opt, err := OptionsFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opt.Bucket = o.Bucket
	roundTrip(t, mustNew(t, opt))
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d requests went to IMDS or AWS_ENDPOINT_URL", n)
	}
}

// TestDefaultChainFromEnvironment: no s3backer flag and no access file:
// the SDK's chain finds AWS_ACCESS_KEY_ID; --baseURL still wins over
// AWS_ENDPOINT_URL, and IMDS is not asked.
func TestDefaultChainFromEnvironment(t *testing.T) {
	o, srv := gwOptions(t)
	hits := isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	opt, err := OptionsFromConfig(parseConfig(t, "--baseURL="+srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if opt.Credentials.Mode != CredentialsDefaultChain {
		t.Fatalf("credentials %v, want the default chain", opt.Credentials.Mode)
	}
	opt.Bucket = o.Bucket
	roundTrip(t, mustNew(t, opt))
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d requests went to IMDS or AWS_ENDPOINT_URL", n)
	}
}

// TestDefaultChainFindsNothing: a clear, permanent error about credentials.
func TestDefaultChainFindsNothing(t *testing.T) {
	o, _ := gwOptions(t)
	isolateAWSEnv(t)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	o.Credentials = Credentials{Mode: CredentialsDefaultChain}
	_, err := mustNew(t, o).Head(context.Background(), "k")
	if err == nil || !backend.IsPermanent(err) || !strings.Contains(err.Error(), "cannot get S3 credentials") {
		t.Fatalf("error %v, want a permanent one about credentials", err)
	}
	var ce *credentialsErr
	if !errors.As(err, &ce) {
		t.Errorf("no credentialsErr in %v", err)
	}
}

// roundTrip puts, reads back and deletes one object.
func roundTrip(t *testing.T, b *Backend) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.Put(ctx, "rt/00000001", []byte("round trip"), backend.Meta{ContentEncoding: "deflate"}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, info, err := b.Get(ctx, "rt/00000001", buf, backend.GetOptions{})
	if err != nil || string(buf[:n]) != "round trip" || info.ContentEncoding != "deflate" {
		t.Fatalf("Get: %q %+v %v", buf[:n], info, err)
	}
	if err := b.Delete(ctx, "rt/00000001"); err != nil {
		t.Fatal(err)
	}
}
