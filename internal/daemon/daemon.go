// Package daemon puts the program in the background the way systemd's
// Type=forking expects: the command the user ran exits 0 only once the
// detached process reports that it is serving, and exits non-zero with the
// reason when start-up fails. Go cannot fork safely, so the parent re-executes
// itself in a new session and waits on a pipe for one status line.
//
// Under a Type=notify unit ($NOTIFY_SOCKET set), readiness is also sent to
// systemd: by the waiting parent, with the detached child as MAINPID (the
// child is not yet the unit's main process, so systemd would not listen
// to it), or by the process itself in the foreground.
package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/s3backer-go/s3backer/internal/sdnotify"
)

const (
	envFD       = "S3BACKER_DAEMON_STATUS_FD"
	envSecretFD = "S3BACKER_DAEMON_SECRET_FD"
)

// secretFile is the child's end of the secret pipe, if the parent sent one.
var secretFile *os.File

// status is the child's end of the pipe; nil when not a daemon child.
var status *os.File

func init() {
	if v, ok := os.LookupEnv(envSecretFD); ok {
		os.Unsetenv(envSecretFD)
		if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
			secretFile = os.NewFile(uintptr(fd), "daemon-secret")
		}
	}
	v, ok := os.LookupEnv(envFD)
	if !ok {
		return
	}
	os.Unsetenv(envFD) // not for our own children
	if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
		status = os.NewFile(uintptr(fd), "daemon-status")
	}
}

// IsChild reports whether this process is the detached child.
func IsChild() bool { return status != nil }

// Start re-executes the program with the same arguments, detached from the
// terminal in a new session, and waits for it to call Ready or Fail. It
// returns nil once the child serves; the caller then exits 0.
//
// secret, if not nil, reaches the child through a pipe (Secret), so that a
// password typed at the parent's prompt never appears in the environment
// or on a command line.
func Start(secret []byte) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	defer r.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return fmt.Errorf("daemonize: %w", err)
	}
	defer devnull.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	cmd.Env = append(os.Environ(), envFD+"=3")
	if secret != nil {
		sr, sw, err := os.Pipe()
		if err != nil {
			w.Close()
			return fmt.Errorf("daemonize: %w", err)
		}
		defer sr.Close()
		// A password fits in the pipe's buffer, so this cannot block.
		_, err = sw.Write(secret)
		sw.Close()
		if err != nil {
			w.Close()
			return fmt.Errorf("daemonize: %w", err)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, sr) // fd 4
		cmd.Env = append(cmd.Env, envSecretFD+"=4")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close() // only the child holds the write end now
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	line, rerr := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSuffix(line, "\n")
	switch {
	case line == "ok":
		pid := cmd.Process.Pid
		_ = cmd.Process.Release()
		// Best effort: a unit that is not Type=notify ignores it.
		_, _ = sdnotify.Notify(fmt.Sprintf("MAINPID=%d\nREADY=1", pid))
		return nil
	case strings.HasPrefix(line, "error: "):
		_ = cmd.Wait()
		return errors.New(strings.TrimPrefix(line, "error: "))
	default:
		werr := cmd.Wait()
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("daemonize: %w", rerr)
		}
		return fmt.Errorf("background process exited before it was ready (%v)", werr)
	}
}

// Ready tells the waiting parent that start-up succeeded and detaches the
// child's working directory (as daemon(3) does). Outside a daemon child it
// only tells systemd, if $NOTIFY_SOCKET is set.
func Ready() {
	if status == nil {
		_, _ = sdnotify.Notify("READY=1")
		return
	}
	fmt.Fprintln(status, "ok")
	status.Close()
	status = nil
	_ = os.Chdir("/")
}

// Fail tells the waiting parent why start-up failed. No-op outside a daemon
// child.
func Fail(err error) {
	if status == nil {
		return
	}
	fmt.Fprintf(status, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	status.Close()
	status = nil
}

// Secret returns what the parent passed to Start, once; nil if nothing.
func Secret() ([]byte, error) {
	if secretFile == nil {
		return nil, nil
	}
	defer func() { secretFile.Close(); secretFile = nil }()
	b, err := io.ReadAll(secretFile)
	if err != nil {
		return nil, fmt.Errorf("read secret from parent: %w", err)
	}
	return b, nil
}
