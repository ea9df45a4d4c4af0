package s3

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// tlsServer answers every request over TLS (HTTP/2 offered) and records the
// protocol version of the last request.
func tlsServer(t *testing.T) (*httptest.Server, *atomic.Int32, string) {
	t.Helper()
	var proto atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int32(r.ProtoMajor))
		w.Header().Set("ETag", `"00000000000000000000000000000000"`)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, &proto, ca
}

func TestTLS(t *testing.T) {
	srv, proto, ca := tlsServer(t)
	base := Options{Bucket: "bkt", BaseURL: srv.URL + "/",
		Credentials: Credentials{Mode: CredentialsStatic, AccessID: "a", AccessKey: "b"}}
	// A HEAD through the SDK, a GET and a PUT through the direct path.
	head := func(o Options) error {
		b := mustNew(t, o)
		if b.direct == nil {
			t.Fatal("no direct path")
		}
		if _, err := b.Head(context.Background(), "k"); err != nil {
			return err
		}
		if _, _, err := b.Get(context.Background(), "k", make([]byte, 8), backend.GetOptions{}); err != nil {
			return err
		}
		_, err := b.Put(context.Background(), "k", make([]byte, 100<<10), backend.Meta{})
		return err
	}

	err := head(base)
	if !backend.IsPermanent(err) || !strings.Contains(err.Error(), "--cacert") {
		t.Errorf("untrusted certificate: %v, want a permanent error naming --cacert", err)
	}

	o := base
	o.CACert = ca
	if err := head(o); err != nil {
		t.Fatalf("--cacert: %v", err)
	}
	if p := proto.Load(); p != 2 {
		t.Errorf("HTTP/%d, want HTTP/2 when the server offers it", p)
	}

	o.HTTP11 = true
	if err := head(o); err != nil {
		t.Fatalf("--http11: %v", err)
	}
	if p := proto.Load(); p != 1 {
		t.Errorf("--http11 used HTTP/%d", p)
	}

	o = base
	o.Insecure = true
	if err := head(o); err != nil {
		t.Fatalf("--insecure: %v", err)
	}

	o = base
	o.CACert = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--cacert") {
		t.Errorf("missing --cacert file: %v", err)
	}
}

// TestRateLimit: bodies move no faster than the limits, each way.
func TestRateLimit(t *testing.T) {
	const size = 96 << 10
	const bytesPerSec = 512 << 10 // 96 KiB less one 32 KiB burst: >= 125 ms
	body := bytes.Repeat([]byte{0xa5}, size)
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	})
	o := f.options()
	o.MaxUploadSpeed = bytesPerSec * 8
	o.MaxDownloadSpeed = bytesPerSec * 8
	b := mustNew(t, o)
	minTime := time.Duration(float64(size-(32<<10)) / bytesPerSec * float64(time.Second))

	start := time.Now()
	if _, err := b.Put(context.Background(), "k", body, backend.Meta{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < minTime {
		t.Errorf("upload of %d bytes took %v, want >= %v", size, d, minTime)
	}
	if got := f.requests()[0].Body; !bytes.Equal(got, body) {
		t.Errorf("uploaded %d bytes, want %d intact", len(got), size)
	}

	start = time.Now()
	buf := make([]byte, size)
	n, _, err := b.Get(context.Background(), "k", buf, backend.GetOptions{})
	if err != nil || n != size {
		t.Fatalf("Get: %d, %v", n, err)
	}
	if d := time.Since(start); d < minTime {
		t.Errorf("download of %d bytes took %v, want >= %v", size, d, minTime)
	}
}

// TestLimitedBodyCancel: a throttled body stops when its context ends.
func TestLimitedBodyCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l := newLimitedBody(ctx, io.NopCloser(bytes.NewReader(make([]byte, 1<<20))), 1024)
	cancel()
	if _, err := io.ReadAll(l); err == nil {
		t.Fatal("read on after cancel")
	}
}
