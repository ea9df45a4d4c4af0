//go:build unix

package s3

import (
	"syscall"
)

// ipTOSControl sets --ipTOS on each new socket (IP_TOS for IPv4, the
// traffic class for IPv6), as s3backer does through curl.
func ipTOSControl(tos int) func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if network == "tcp6" {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS, tos)
			} else {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TOS, tos)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
