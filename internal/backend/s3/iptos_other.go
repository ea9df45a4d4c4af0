//go:build !unix

package s3

import "syscall"

// ipTOSControl: --ipTOS is not supported here; sockets keep their default.
func ipTOSControl(int) func(network, address string, c syscall.RawConn) error { return nil }
