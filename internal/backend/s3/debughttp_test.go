package s3

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
)

func TestRedactHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, Signature=abc")
	h.Set("x-amz-security-token", "tok")
	h.Set("x-amz-server-side-encryption-customer-key", "c2VjcmV0")
	h.Set("Cookie", "session=1")
	h.Set("X-Amz-Meta-S3backer-Mount-Token", "2d3806ab")
	h.Set("Content-Type", "text/plain")
	got := redactHeaders(h)
	for _, secret := range []string{"AKID", "Signature", "tok;", "c2VjcmV0", "session=1"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q shows %q", got, secret)
		}
	}
	for _, keep := range []string{"Content-Type: text/plain", "X-Amz-Meta-S3backer-Mount-Token: 2d3806ab", "Authorization: REDACTED"} {
		if !strings.Contains(got, keep) {
			t.Errorf("%q lacks %q", got, keep)
		}
	}
	u, _ := url.Parse("https://user:pw@h/b/k?X-Amz-Signature=sig&X-Amz-Credential=cred&delete=")
	if s := redactURL(u); strings.Contains(s, "sig") || strings.Contains(s, "cred") || strings.Contains(s, "pw") || !strings.Contains(s, "delete") {
		t.Errorf("redactURL = %q", s)
	}
}

// TestDebugHTTPAgainstGateway: a whole workload logged, the secret key
// nowhere in the log.
func TestDebugHTTPAgainstGateway(t *testing.T) {
	o, srv := gwOptions(t)
	var log bytes.Buffer
	o.DebugHTTP = true
	o.Logger = slog.New(slog.NewTextHandler(&log, nil))
	b := mustNew(t, o)
	ctx := context.Background()
	if _, err := b.Put(ctx, "d/00000001", []byte("x"), backend.Meta{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "d/00000001", make([]byte, 8), backend.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.List(ctx, "d/", "", func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteMany(ctx, []string{"d/00000001"}); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	checkNoSecrets(t, out, srv.SecretKey)
	for _, want := range []string{"method=PUT", "method=GET", "method=POST", `status="200 OK"`, srv.URL + o.Bucket + "/d/00000001"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
