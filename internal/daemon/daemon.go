// Package daemon puts the program in the background the way systemd's
// Type=forking expects: the command the user ran exits 0 only once the
// detached process reports that it is serving, and exits non-zero with the
// reason when start-up fails. Go cannot fork safely, so the parent re-executes
// itself in a new session and waits on a pipe for one status line.
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
)

const envFD = "S3BACKER_DAEMON_STATUS_FD"

// status is the child's end of the pipe; nil when not a daemon child.
var status *os.File

func init() {
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
func Start() error {
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
		_ = cmd.Process.Release()
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
// child's working directory (as daemon(3) does). No-op outside a daemon child.
func Ready() {
	if status == nil {
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
