// Package versitygw runs a real S3 service for tests: the Versity S3
// Gateway over a posix directory, on a loopback port. Tests talk to it as
// they would to S3 and can look at DIR/BUCKET/KEY to see what was stored.
//
// Install the gateway once with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// Without it, tests that need it are skipped with that command as reason.
package versitygw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// InstallCommand installs the gateway version the tests are written for.
const InstallCommand = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

const (
	accessKey = "s3backer-test-access"
	secretKey = "s3backer-test-secret-key"
	// startTimeout bounds one start attempt (the gateway starts in well
	// under a second).
	startTimeout = 20 * time.Second
	startTries   = 5
)

func init() {
	// Keep the AWS SDK off the instance-metadata address in every test
	// that uses this package.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// Server is a running gateway.
type Server struct {
	URL       string // "http://127.0.0.1:PORT/"
	Addr      string // "127.0.0.1:PORT"
	AccessKey string
	SecretKey string
	Region    string

	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	output  *limitedBuffer
	buckets atomic.Int64
}

// Binary returns the gateway's path: $VERSITYGW, versitygw on PATH, or
// $(go env GOPATH)/bin/versitygw; "" if there is none.
func Binary() string {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// Start runs a gateway for t, stopped at t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("versitygw not found; install it with: " + InstallCommand)
	}
	s, err := start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

var shared struct {
	once sync.Once
	srv  *Server
	dir  string
	err  error
	skip bool
}

// Shared returns one gateway for the whole test binary, started on first
// use; stop it with Main. Give each test its own bucket (NewBucket).
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		bin := Binary()
		if bin == "" {
			shared.skip = true
			return
		}
		shared.dir, shared.err = os.MkdirTemp("", "versitygw-")
		if shared.err == nil {
			shared.srv, shared.err = start(bin, shared.dir)
		}
	})
	if shared.skip {
		t.Skip("versitygw not found; install it with: " + InstallCommand)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// Main runs a package's tests and then stops the Shared gateway:
//
//	func TestMain(m *testing.M) { versitygw.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// StopShared stops the Shared gateway, for a TestMain that does more than
// Main.
func StopShared() {
	if shared.srv != nil {
		shared.srv.stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

// start tries a few free ports: another process may take the one picked
// between our probe and the gateway's bind.
func start(bin, dir string) (*Server, error) {
	var errs []error
	for range startTries {
		s, err := startOnce(bin, dir)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("versitygw did not start: %w", errors.Join(errs...))
}

func startOnce(bin, dir string) (*Server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:       "http://" + addr + "/",
		Addr:      addr,
		AccessKey: accessKey,
		SecretKey: secretKey,
		Region:    "us-east-1",
		dir:       dir,
		exited:    make(chan struct{}),
		output:    &limitedBuffer{max: 64 << 10},
	}
	s.cmd = exec.Command(bin, "--access", accessKey, "--secret", secretKey, "--region", s.Region,
		"--port", addr, "--keep-alive", "--quiet", "posix", dir)
	s.cmd.Stdout = s.output
	s.cmd.Stderr = s.output
	// Its own environment would let ROOT_ACCESS_KEY etc. override ours.
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	setPdeathsig(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls the port until the gateway accepts connections, it
// exits, or the deadline passes.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("versitygw on %s exited: %s", s.Addr, strings.TrimSpace(s.output.String()))
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw on %s not answering after %v: %s", s.Addr, startTimeout, s.output.String())
		}
	}
}

func (s *Server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.exited
}

// Dir is the posix root: object KEY of BUCKET is the file Dir()/BUCKET/KEY.
func (s *Server) Dir() string { return s.dir }

// Output is what the gateway printed (at most 64 KiB), for failure reports.
func (s *Server) Output() string { return s.output.String() }

// CreateBucket creates a bucket (3 to 63 characters: lower-case letters,
// digits, '-').
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket %q: %v", name, err)
	}
}

// NewBucket creates a bucket with a name no other test of this process
// uses, derived from the test's name, and returns the name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	base := strings.Trim(b.String(), "-")
	suffix := fmt.Sprintf("-%d-%d", os.Getpid()%100000, s.buckets.Add(1))
	if len(base) > 63-len(suffix) {
		base = strings.TrimRight(base[:63-len(suffix)], "-")
	}
	if base == "" {
		base = "bucket"
	}
	name := base + suffix
	s.CreateBucket(t, name)
	return name
}

// Client returns an SDK client for the gateway (path style, its keys), for
// tests that want to look at the bucket from outside the code under test.
func (s *Server) Client() *awss3.Client {
	return awss3.New(awss3.Options{
		Region:                     s.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint:               aws.String(s.URL),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
