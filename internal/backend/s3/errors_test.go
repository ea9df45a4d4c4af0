package s3

import (
	"context"
	"errors"
	"io"
	"iter"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// TestClassifyStatus: what each answer becomes, from a tiny server.
func TestClassifyStatus(t *testing.T) {
	cases := []struct {
		status     int
		code       string
		want       error // a sentinel, or nil
		permanent  bool
		mentioning string
	}{
		{503, "SlowDown", nil, false, "503 SlowDown"},
		{500, "InternalError", nil, false, "500"},
		{501, "NotImplemented", nil, true, "501 NotImplemented"},
		{429, "TooManyRequests", nil, false, "429"},
		{408, "RequestTimeout", nil, false, "408"},
		{400, "InvalidArgument", nil, true, "400 InvalidArgument"},
		{400, "AuthorizationHeaderMalformed", nil, true, "--region"},
		{403, "SignatureDoesNotMatch", nil, true, "credentials"},
		{403, "AccessDenied", nil, true, "credentials"},
		{301, "PermanentRedirect", nil, true, "--region"},
		{404, "NoSuchBucket", nil, true, `bucket "bkt" does not exist`},
		{404, "NoSuchKey", backend.ErrNotFound, true, ""},
		{304, "", backend.ErrNotModified, true, ""},
		{412, "PreconditionFailed", backend.ErrPrecondition, true, ""},
	}
	for _, c := range cases {
		f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
			if c.status == 304 {
				w.WriteHeader(304)
				return
			}
			s3Error(w, c.status, c.code, "a message")
		})
		b := mustNew(t, f.options())
		_, _, err := b.Get(context.Background(), "disk/0000abcd", make([]byte, 10), backend.GetOptions{})
		if err == nil {
			t.Errorf("%d %s: no error", c.status, c.code)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "get disk/0000abcd: ") {
			t.Errorf("%d %s: error %q does not start with the operation and key", c.status, c.code, msg)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%d %s: error has several lines: %q", c.status, c.code, msg)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%d %s: %v, want %v", c.status, c.code, err, c.want)
		}
		if got := backend.IsPermanent(err); got != c.permanent {
			t.Errorf("%d %s: permanent = %v, want %v (%v)", c.status, c.code, got, c.permanent, err)
		}
		if !strings.Contains(msg, c.mentioning) {
			t.Errorf("%d %s: error %q does not mention %q", c.status, c.code, msg, c.mentioning)
		}
		var se *StatusError
		if c.want == nil && (!errors.As(err, &se) || se.Status != c.status || se.Code != c.code) {
			t.Errorf("%d %s: no matching StatusError in %v", c.status, c.code, err)
		}
	}
}

// An answer that names the bucket's region (AWS: x-amz-bucket-region on
// a redirect, <Region> in AuthorizationHeaderMalformed) turns into the
// --region to use, on both request paths; a clock too far off and an
// archived object say so rather than blaming the credentials.
func TestClassifyRegionAndClock(t *testing.T) {
	cases := []struct {
		name       string
		answer     func(w http.ResponseWriter)
		mentioning string
	}{
		{"redirect", func(w http.ResponseWriter) {
			w.Header().Set("X-Amz-Bucket-Region", "eu-west-1")
			s3Error(w, http.StatusMovedPermanently, "PermanentRedirect", "use the endpoint")
		}, `bucket "bkt" is in region eu-west-1: use --region=eu-west-1`},
		{"redirect without region", func(w http.ResponseWriter) {
			s3Error(w, http.StatusMovedPermanently, "PermanentRedirect", "use the endpoint")
		}, "check --region, --baseURL and --vhost"},
		{"signed for another region", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code>`+
				`<Message>the region 'us-east-1' is wrong; expecting 'ap-south-1'</Message><Region>ap-south-1</Region></Error>`)
		}, "use --region=ap-south-1"},
		{"clock", func(w http.ResponseWriter) {
			s3Error(w, http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
		}, "clock"},
		{"archived", func(w http.ResponseWriter) {
			s3Error(w, http.StatusForbidden, "InvalidObjectState", "The operation is not valid for the object's storage class")
		}, "archived"},
	}
	for _, c := range cases {
		for _, sdk := range []bool{false, true} {
			f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) { c.answer(w) })
			o := f.options()
			o.SDKRequests = sdk
			b := mustNew(t, o)
			_, _, err := b.Get(context.Background(), "disk/0000abcd", make([]byte, 10), backend.GetOptions{})
			if err == nil || !strings.Contains(err.Error(), c.mentioning) || !backend.IsPermanent(err) {
				t.Errorf("%s (SDK %v): %v, want a permanent error mentioning %q", c.name, sdk, err, c.mentioning)
			}
		}
	}
}

// TestConnectionRefused: one clear, transient line naming the endpoint.
func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	b := mustNew(t, Options{Bucket: "bkt", BaseURL: "http://" + addr + "/",
		Credentials: Credentials{Mode: CredentialsStatic, AccessID: "a", AccessKey: "b"}})
	_, err = b.Head(context.Background(), "k")
	want := "head k: cannot reach http://" + addr + "/: connection refused"
	if err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if backend.IsPermanent(err) {
		t.Error("connection refused classified permanent")
	}
}

// TestTimeout: --timeout bounds a request; running out is transient.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
		select { // hang until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	o := f.options()
	o.Timeout = 200 * time.Millisecond
	for op, err := range ops(context.Background(), mustNew(t, o)) {
		if err == nil || !errors.Is(err, errTimeout) || !strings.Contains(err.Error(), "--timeout") {
			t.Fatalf("%s: error %v, want a timeout naming --timeout", op, err)
		}
		if backend.IsPermanent(err) {
			t.Errorf("%s: timeout classified permanent", op)
		}
	}
}

// ops runs a HEAD (through the SDK), a GET and a PUT (the direct path) on
// b, yielding each one's error.
func ops(ctx context.Context, b *Backend) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		_, err := b.Head(ctx, "k")
		if !yield("head", err) {
			return
		}
		_, _, err = b.Get(ctx, "k", make([]byte, 8), backend.GetOptions{})
		if !yield("get", err) {
			return
		}
		_, err = b.Put(ctx, "k", []byte("x"), backend.Meta{})
		yield("put", err)
	}
}

// TestCallerCancel: the caller's deadline is reported as such.
func TestCallerCancel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	for op, err := range ops(ctx, mustNew(t, f.options())) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: error %v, want context.DeadlineExceeded", op, err)
		}
	}
}

// TestWrongSecret and TestMissingBucket run against the real gateway.
func TestWrongSecret(t *testing.T) {
	o, _ := gwOptions(t)
	o.Credentials.AccessKey = "not-the-secret"
	_, err := mustNew(t, o).Put(context.Background(), "k", []byte("x"), backend.Meta{})
	if !backend.IsPermanent(err) || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("error %v, want a permanent error about credentials", err)
	}
	_, err = mustNew(t, o).Head(context.Background(), "k")
	if !backend.IsPermanent(err) || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("HEAD: error %v, want a permanent error about credentials", err)
	}
	if err := mustNew(t, o).CheckBucket(context.Background()); !backend.IsPermanent(err) || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("CheckBucket: error %v, want a permanent error about credentials", err)
	}
}

func TestMissingBucket(t *testing.T) {
	o, _ := gwOptions(t)
	o.Bucket = "no-such-bucket-here"
	b := mustNew(t, o)
	for name, err := range map[string]error{
		"put": func() error { _, err := b.Put(context.Background(), "k", []byte("x"), backend.Meta{}); return err }(),
		"get": func() error {
			_, _, err := b.Get(context.Background(), "k", make([]byte, 1), backend.GetOptions{})
			return err
		}(),
		"list":        b.List(context.Background(), "", "", func(string) error { return nil }),
		"CheckBucket": b.CheckBucket(context.Background()),
	} {
		if !backend.IsPermanent(err) || errors.Is(err, backend.ErrNotFound) ||
			!strings.Contains(err.Error(), `bucket "no-such-bucket-here" does not exist`) {
			t.Errorf("%s: error %v, want a permanent error saying the bucket does not exist", name, err)
		}
	}
	if err := mustNew(t, func() Options { o, _ := gwOptions(t); return o }()).CheckBucket(context.Background()); err != nil {
		t.Errorf("CheckBucket of an existing bucket: %v", err)
	}
}

// A DeleteObjects the store does not have is told apart from one that
// failed: the caller then deletes one key at a time.
func TestDeleteManyUnsupported(t *testing.T) {
	cases := []struct {
		status      int
		code        string
		unsupported bool
	}{
		{501, "NotImplemented", true},
		{405, "MethodNotAllowed", true},
		{400, "InvalidArgument", true},
		{500, "InternalError", false},
		{403, "AccessDenied", false},
		{400, "MalformedXML", false},
	}
	for _, c := range cases {
		f := newFakeS3(t, func(w http.ResponseWriter, r *http.Request) {
			s3Error(w, c.status, c.code, "a message")
		})
		b := mustNew(t, f.options())
		err := b.DeleteMany(context.Background(), []string{"k1", "k2"})
		if got := errors.Is(err, errors.ErrUnsupported); got != c.unsupported {
			t.Errorf("%d %s: %v: unsupported = %v, want %v", c.status, c.code, err, got, c.unsupported)
		}
		if c.unsupported && !backend.IsPermanent(err) {
			t.Errorf("%d %s: %v is not permanent", c.status, c.code, err)
		}
	}
}
