package password

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns both ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// On a terminal the password is asked for and read up to the end of the
// line. (Whether it echoes cannot be told here: the line discipline
// handles input as it is written, before the prompt turns echo off.)
func TestPromptOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	if _, err := master.Write([]byte("hunter2\n")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	pw, err := FromConfig(parse(t, "--encrypt"), &Terminal{In: slave, Out: &out})
	if err != nil || string(pw) != "hunter2" {
		t.Fatalf("prompt: %q, %v", pw, err)
	}
	if out.String() != "Password: \n" {
		t.Errorf("prompt wrote %q", out.String())
	}
}
