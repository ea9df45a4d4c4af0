package s3

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// fakeIMDS serves role credentials as EC2's instance metadata does.
type fakeIMDS struct {
	*httptest.Server
	mu       sync.Mutex
	paths    []string
	tokens   int // PUT /latest/api/token calls
	withTok  int // metadata GETs that carried the session token
	noTokens bool
}

const imdsToken = "imds-session-token-value"

func newFakeIMDS(t *testing.T, role, id, secret, sessionToken string) *fakeIMDS {
	t.Helper()
	f := &fakeIMDS{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			if f.noTokens {
				http.Error(w, "no IMDSv2 here", http.StatusForbidden)
				return
			}
			f.tokens++
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			w.Write([]byte(imdsToken))
			return
		}
		f.paths = append(f.paths, r.URL.Path)
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") == imdsToken {
			f.withTok++
		}
		switch r.URL.Path {
		case "/latest/meta-data/iam/security-credentials/":
			w.Write([]byte(role + "\n"))
		case "/latest/meta-data/iam/security-credentials/" + role:
			json.NewEncoder(w).Encode(map[string]string{
				"Code": "Success", "Type": "AWS-HMAC",
				"AccessKeyId": id, "SecretAccessKey": secret, "Token": sessionToken,
				"LastUpdated": time.Now().UTC().Format(time.RFC3339),
				"Expiration":  time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339),
			})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIMDS) seen() (paths []string, tokens, withTok int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.paths...), f.tokens, f.withTok
}

// TestEC2IAMRole: --accessEC2IAM=ROLE takes that role's keys from the
// metadata service (a fake on loopback) and signs with them; the gateway
// accepts them. IMDS is used although AWS_EC2_METADATA_DISABLED is set:
// the flag asks for it. --debug-http output never shows a secret.
func TestEC2IAMRole(t *testing.T) {
	o, srv := gwOptions(t)
	imds := newFakeIMDS(t, "s3backer-role", srv.AccessKey, srv.SecretKey, "")
	o.Credentials = Credentials{Mode: CredentialsEC2IAM, Role: "s3backer-role", IMDSv2: true, IMDSEndpoint: imds.URL}
	var log bytes.Buffer
	o.DebugHTTP = true
	o.Logger = slog.New(slog.NewTextHandler(&log, nil))
	roundTrip(t, mustNew(t, o))

	paths, tokens, withTok := imds.seen()
	if len(paths) == 0 || paths[0] != "/latest/meta-data/iam/security-credentials/s3backer-role" {
		t.Errorf("metadata requests %q, want the named role's credentials only", paths)
	}
	if tokens == 0 || withTok != len(paths) {
		t.Errorf("IMDSv2: %d token requests, %d of %d GETs with the token", tokens, withTok, len(paths))
	}
	checkNoSecrets(t, log.String(), srv.SecretKey, imdsToken)
}

// TestEC2IAMDiscover: without a role name the instance's role is listed
// first; without --accessEC2IAM-IMDSv2 a server without tokens works
// (IMDSv1).
func TestEC2IAMDiscover(t *testing.T) {
	o, srv := gwOptions(t)
	imds := newFakeIMDS(t, "found-role", srv.AccessKey, srv.SecretKey, "")
	imds.noTokens = true
	o.Credentials = Credentials{Mode: CredentialsEC2IAM, IMDSEndpoint: imds.URL}
	roundTrip(t, mustNew(t, o))
	paths, _, _ := imds.seen()
	want := []string{"/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/found-role"}
	if len(paths) < 2 || paths[0] != want[0] || paths[1] != want[1] {
		t.Errorf("metadata requests %q, want %q", paths, want)
	}
}

// TestEC2IAMSessionToken: a role's session token goes out as
// x-amz-security-token, and --debug-http hides it.
func TestEC2IAMSessionToken(t *testing.T) {
	const session = "role-session-token-SECRET"
	f := newFakeS3(t, func(http.ResponseWriter, *http.Request) {})
	imds := newFakeIMDS(t, "r", "ASIAFAKE", "role-secret-key", session)
	o := f.options()
	o.Credentials = Credentials{Mode: CredentialsEC2IAM, Role: "r", IMDSEndpoint: imds.URL}
	var log bytes.Buffer
	o.DebugHTTP = true
	o.Logger = slog.New(slog.NewTextHandler(&log, nil))
	if _, err := mustNew(t, o).Head(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	if r.Header.Get("X-Amz-Security-Token") != session || !strings.Contains(r.Header.Get("Authorization"), "Credential=ASIAFAKE/") {
		t.Errorf("request not signed with the role's keys: %v", r.Header)
	}
	checkNoSecrets(t, log.String(), "role-secret-key", session)
}

// TestEC2IAMUnreachable: a dead metadata service is reported as a
// credentials problem.
func TestEC2IAMUnreachable(t *testing.T) {
	f := newFakeS3(t, func(http.ResponseWriter, *http.Request) {})
	imds := newFakeIMDS(t, "r", "a", "b", "")
	imds.Close()
	o := f.options()
	o.Credentials = Credentials{Mode: CredentialsEC2IAM, Role: "r", IMDSEndpoint: imds.URL}
	_, err := mustNew(t, o).Head(t.Context(), "k")
	if err == nil || !strings.Contains(err.Error(), "cannot get S3 credentials from EC2 IAM role") {
		t.Fatalf("error %v, want one about EC2 IAM credentials", err)
	}
	if backend.IsPermanent(err) {
		t.Errorf("unreachable metadata service classified permanent: %v", err)
	}
	if len(f.requests()) != 0 {
		t.Error("an unsigned request went out")
	}
}

func checkNoSecrets(t *testing.T, log string, secrets ...string) {
	t.Helper()
	if !strings.Contains(log, "http request") || !strings.Contains(log, "http response") {
		t.Fatalf("no HTTP debug log:\n%s", log)
	}
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("debug log shows secret %q:\n%s", s, log)
		}
	}
	if strings.Contains(log, "Signature=") {
		t.Errorf("debug log shows a signature:\n%s", log)
	}
}

// TestEC2IAMWrongRole: the metadata service's 404 for an unknown role is a
// permanent credentials error, never "object not found" (which would read
// as a block of zeros).
func TestEC2IAMWrongRole(t *testing.T) {
	f := newFakeS3(t, func(http.ResponseWriter, *http.Request) {})
	imds := newFakeIMDS(t, "real-role", "a", "b", "")
	o := f.options()
	o.Credentials = Credentials{Mode: CredentialsEC2IAM, Role: "no-such-role", IMDSEndpoint: imds.URL}
	_, _, err := mustNew(t, o).Get(t.Context(), "k", make([]byte, 1), backend.GetOptions{})
	if err == nil || errors.Is(err, backend.ErrNotFound) || !backend.IsPermanent(err) ||
		!strings.Contains(err.Error(), "no-such-role") {
		t.Fatalf("error %v, want a permanent credentials error naming the role", err)
	}
}
