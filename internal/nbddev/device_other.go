//go:build !linux

package nbddev

import (
	"context"
	"errors"
)

// errNotLinux: kernel NBD devices exist only on Linux.
var errNotLinux = errors.New("kernel NBD devices need Linux")

// Device is an attached kernel NBD device (Linux only).
type Device struct{}

// Attach fails: kernel NBD devices need Linux.
func Attach(ctx context.Context, path string, serve ServeFunc, opt Options) (*Device, error) {
	return nil, errNotLinux
}

func (d *Device) Path() string                     { return "" }
func (d *Device) Method() Method                   { return Auto }
func (d *Device) Done() <-chan struct{}            { return nil }
func (d *Device) Err() error                       { return errNotLinux }
func (d *Device) Detach(ctx context.Context) error { return errNotLinux }

// Check fails: kernel NBD devices need Linux.
func Check(ctx context.Context, path string) error { return errNotLinux }
