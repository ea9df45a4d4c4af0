package nbddev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// staleError: the device is attached on behalf of a process that no longer
// exists, so every request on it fails; it may be taken over.
type staleError struct{ pid int }

func (e staleError) Error() string {
	return fmt.Sprintf("attached by a process that no longer exists (thread %d)", e.pid)
}

// checkFree returns nil if the device is not attached, a staleError if its
// server is gone, and an ErrInUse error otherwise.
func checkFree(n node) error {
	pid, err := n.attachedPID()
	if err != nil || pid == 0 {
		return err
	}
	if !processExists(pid) && inInitPIDNamespace() {
		return staleError{pid}
	}
	return fmt.Errorf("%s: %w (attached by %s)", n.path, ErrInUse, describeProcess(pid))
}

// processExists reports whether pid names a live process or thread.
func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// initPIDNamespaceInode is the fixed inode of the initial PID namespace
// (PROC_PID_INIT_INO). The kernel records pids as the initial namespace
// sees them: only there does a missing /proc/PID mean a dead process.
const initPIDNamespaceInode = "pid:[4026531836]"

func inInitPIDNamespace() bool {
	l, err := os.Readlink("/proc/self/ns/pid")
	return err == nil && l == initPIDNamespaceInode
}

// describeProcess names the process that thread id tid belongs to (the
// kernel records the attaching thread), for the in-use message.
func describeProcess(tid int) string {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return fmt.Sprintf("process %d", tid)
	}
	pid, name := tid, ""
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Tgid":
			if n, err := strconv.Atoi(v); err == nil {
				pid = n
			}
		case "Name":
			name = v
		}
	}
	if name == "" {
		return fmt.Sprintf("process %d", pid)
	}
	return fmt.Sprintf("process %d, %s", pid, name)
}
