package s3

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// recorded is one request a fakeS3 saw.
type recorded struct {
	Method, Path, RawQuery, Host string
	URI                          string // as sent: escaped path and query
	Header                       http.Header
	Body                         []byte
	ProtoMajor                   int
}

// fakeS3 answers with respond and records every request, for tests of
// what goes on the wire and of how answers are classified.
type fakeS3 struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFakeS3(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *fakeS3 {
	t.Helper()
	f := &fakeS3{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.RequestURI, r.Header.Clone(), body, r.ProtoMajor})
		f.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeS3) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// options returns Options for bucket "bkt" on the fake with static keys.
func (f *fakeS3) options() Options {
	return Options{
		Bucket:      "bkt",
		BaseURL:     f.URL + "/",
		Credentials: Credentials{Mode: CredentialsStatic, AccessID: "AKIDFAKE", AccessKey: "fake-secret-key"},
	}
}

// routeAll sends every connection of o to the fake, whatever the host it
// is for: vhost and named-host requests without DNS.
func (f *fakeS3) routeAll(o *Options) {
	o.dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, f.Listener.Addr().String())
	}
}

// s3Error writes an S3 XML error answer.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>`+msg+
		`</Message><RequestId>req1</RequestId></Error>`)
}
