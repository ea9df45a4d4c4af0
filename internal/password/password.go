// Package password gets the encryption password the way s3backer does:
// --password, else the first line of --passwordFile, else a prompt on the
// terminal without echo.
package password

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/s3backer-go/s3backer/internal/config"
)

// maxLine is the longest password s3backer reads from a file (fgets into
// 1024 bytes): longer lines are cut there, so the same file gives the
// same key in both programs.
const maxLine = 1023

// Terminal is where the prompt happens; tests replace it.
type Terminal struct {
	In  *os.File  // read without echo; must be a terminal
	Out io.Writer // the prompt goes here
}

// FromConfig returns the password for cfg, or nil without --encrypt. It
// prompts on t (os.Stdin and os.Stderr when nil) only when neither
// --password nor --passwordFile is given.
func FromConfig(cfg *config.Config, t *Terminal) ([]byte, error) {
	switch {
	case cfg.Encrypt == "":
		return nil, nil
	case cfg.IsSet("password") || cfg.Password != "":
		return []byte(cfg.Password), nil
	case cfg.PasswordFile != "":
		return FromFile(cfg.PasswordFile)
	}
	if t == nil {
		t = &Terminal{In: os.Stdin, Out: os.Stderr}
	}
	return Prompt(t)
}

// FromFile reads the first line of path, without its newline (only "\n"
// is removed, as s3backer does: a "\r" stays part of the password).
func FromFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, maxLine)).ReadSlice('\n')
	switch {
	case err == nil:
		line = line[:len(line)-1]
	case errors.Is(err, io.EOF) && len(line) > 0:
		// A last line without newline, or a line cut at maxLine.
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("password file %s is empty", path)
	default:
		return nil, fmt.Errorf("password file %s: %w", path, err)
	}
	return bytes.Clone(cutNUL(line)), nil
}

// Prompt asks for the password on a terminal, without echo.
func Prompt(t *Terminal) ([]byte, error) {
	fd := int(t.In.Fd())
	if !term.IsTerminal(fd) {
		return nil, errors.New("--encrypt needs a password: give --password or --passwordFile (standard input is not a terminal to ask on)")
	}
	fmt.Fprint(t.Out, "Password: ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(t.Out)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	return cutNUL(pw), nil
}

// cutNUL ends the password at a NUL byte: s3backer keeps it as a C string.
func cutNUL(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}
