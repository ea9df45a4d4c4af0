package s3

import (
	"context"
	"testing"

	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

func TestMain(m *testing.M) { versitygw.Main(m) }

// gwOptions are Options for a fresh bucket on the shared gateway.
func gwOptions(t *testing.T) (Options, *versitygw.Server) {
	t.Helper()
	srv := versitygw.Shared(t)
	return Options{
		Bucket:      srv.NewBucket(t),
		BaseURL:     srv.URL,
		Region:      srv.Region,
		Credentials: Credentials{Mode: CredentialsStatic, AccessID: srv.AccessKey, AccessKey: srv.SecretKey},
	}, srv
}

func mustNew(t *testing.T, o Options) *Backend {
	t.Helper()
	b, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}
