// Package e2e drives the real s3backer binary with real external tools:
// libnbd's nbdinfo, nbdsh and nbdcopy, qemu-io, and Debian's C s3backer.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/testenv/lockedbuf"
	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// bin is the s3backer binary under test: $S3BACKER_BIN (set by `make
// test`), or one built for this run.
var bin string

func TestMain(m *testing.M) {
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	// nbdsh runs the python3 first on PATH; Debian's has libnbd's bindings.
	os.Setenv("PATH", "/usr/bin:"+os.Getenv("PATH"))
	bin = os.Getenv("S3BACKER_BIN")
	if bin == "" {
		dir, err := os.MkdirTemp("", "s3backer-e2e")
		if err != nil {
			panic(err)
		}
		bin = filepath.Join(dir, "s3backer")
		out, err := exec.Command("go", "build", "-o", bin, "../../cmd/s3backer").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building s3backer: %v\n%s", err, out)
			os.Exit(1)
		}
		code := m.Run()
		versitygw.StopShared()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	versitygw.Main(m)
}

// need skips the test when a tool is truly missing from the machine (CI
// installs them all, so there it runs).
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-test-deps.sh installs it)", tool)
		}
	}
}

// proc is a process under test (s3backer, nbdkit) whose stderr is kept.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan error // its exit, sent once stderr is read to the end
	logs lockedbuf.Buffer
}

// startProc starts cmd and keeps its stderr, calling line (if not nil)
// with each line as it comes. However the test ends, the process is
// killed if it still runs.
func startProc(t *testing.T, cmd *exec.Cmd, line func(string)) (*proc, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{t: t, cmd: cmd, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = p.logs.Write([]byte(sc.Text() + "\n"))
			if line != nil {
				line(sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p, nil
}

// seen returns a line callback for startProc and a channel that gets a
// value once a line containing sub has come.
func seen(sub string) (func(string), <-chan struct{}) {
	ch := make(chan struct{}, 1)
	return func(line string) {
		if strings.Contains(line, sub) {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}, ch
}

// exited waits (up to a minute) for the process to end, after why (a
// signal, an unmount), and requires a clean exit.
func (p *proc) exited(why string) {
	p.t.Helper()
	name := filepath.Base(p.cmd.Path)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("%s exited with %v after %s\n%s", name, err, why, p.logText())
		}
	case <-time.After(60 * time.Second):
		p.t.Fatalf("%s did not exit after %s\n%s", name, why, p.logText())
	}
}

// logText is the process's stderr so far.
func (p *proc) logText() string {
	return p.logs.String()
}

// server is one running `s3backer --nbd -f` process.
type server struct {
	*proc
	URI string
	Dir string
}

var servingRE = regexp.MustCompile(`msg=serving .*uri="?([^"\s]+)`)

// startServer runs s3backer in the foreground over a --test directory
// with the given extra flags, serving on a fresh unix socket (or on tcp
// if tcp is set), and returns once it logs that it is serving.
func startServer(t *testing.T, dir string, tcp bool, flags ...string) *server {
	t.Helper()
	s := startWith(t, tcp, append([]string{"--test"}, flags...), dir)
	s.Dir = dir
	return s
}

// startWith runs `s3backer --nbd -f FLAGS BUCKET TARGET` and returns once it
// serves; see startServer.
func startWith(t *testing.T, tcp bool, flags []string, bucket string) *server {
	t.Helper()
	s, err := tryStart(t, tcp, flags, bucket)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryStart is startWith returning start-up failure as an error (with the
// server's output) instead of failing the test.
func tryStart(t *testing.T, tcp bool, flags []string, bucket string) (*server, error) {
	t.Helper()
	target := "nbd+unix:///?socket=" + filepath.Join(t.TempDir(), "nbd.sock")
	if tcp {
		target = "nbd://127.0.0.1:0"
	}
	args := append([]string{"--nbd", "-f"}, flags...)
	args = append(args, bucket, target)
	cmd := exec.Command(bin, args...)
	cmd.Env = testEnv(t)
	uri := make(chan string, 1)
	p, err := startProc(t, cmd, func(line string) {
		if m := servingRE.FindStringSubmatch(line); m != nil {
			select {
			case uri <- m[1]:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	s := &server{proc: p}
	select {
	case u := <-uri:
		s.URI = u
	case err := <-s.done:
		s.done <- err
		select {
		case u := <-uri: // served, then exited: the caller sees the exit
			s.URI = u
			return s, nil
		default:
		}
		return nil, fmt.Errorf("s3backer exited before serving (%v):\n%s", err, s.logText())
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("s3backer did not start serving\n%s", s.logText())
	}
	return s, nil
}

// testEnv is the environment of every s3backer run: no AWS instance
// metadata lookups, and a HOME of its own so no ~/.s3backer_passwd or
// ~/.aws of the machine is read.
func testEnv(t *testing.T) []string {
	return append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true", "HOME="+t.TempDir())
}

// stop sends sig and requires a clean exit.
func (s *server) stop(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	s.exited(sig.String())
}

// run runs a tool and returns its stdout, failing the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// blockFiles lists the block files in a --test directory.
func blockFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// runOut runs a tool and returns its combined output and error.
func runOut(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// waitFor polls cond until it holds or the deadline passes: for processes
// that are not our children (daemons, FUSE mounts), which offer nothing to
// block on.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
