package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// nbdTarget is where --nbd serves the disk: a kernel NBD device, or a
// socket NBD clients connect to.
type nbdTarget struct {
	device  string // kernel NBD device (/dev/nbdX); the rest is unset
	network string // "tcp" or "unix"
	address string // host:port or socket path
}

const defaultNBDPort = "10809"

// parseNBDTarget accepts a kernel NBD device path (/dev/nbdX, as s3backer
// does; any absolute path, checked when attaching) and the NBD URI forms
// nbd://HOST[:PORT][/EXPORT] and nbd+unix:///[EXPORT]?socket=PATH (the
// export name is ignored: one disk is served under every name).
func parseNBDTarget(s string) (nbdTarget, error) {
	if strings.HasPrefix(s, "/") {
		return nbdTarget{device: filepath.Clean(s)}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nbdTarget{}, fmt.Errorf("%s: not an NBD URI: %w", s, err)
	}
	switch u.Scheme {
	case "nbd":
		host, port := u.Hostname(), u.Port()
		if host == "" {
			return nbdTarget{}, fmt.Errorf("%s: NBD URI has no host (want nbd://HOST[:PORT])", s)
		}
		if port == "" {
			port = defaultNBDPort
		}
		return nbdTarget{network: "tcp", address: net.JoinHostPort(host, port)}, nil
	case "nbd+unix":
		sock := u.Query().Get("socket")
		if sock == "" {
			return nbdTarget{}, fmt.Errorf("%s: NBD URI has no socket (want nbd+unix:///?socket=PATH)", s)
		}
		// Absolute, so the daemon still finds it after leaving the
		// working directory.
		if sock, err = filepath.Abs(sock); err != nil {
			return nbdTarget{}, fmt.Errorf("%s: %w", s, err)
		}
		return nbdTarget{network: "unix", address: sock}, nil
	default:
		return nbdTarget{}, fmt.Errorf("%s: unsupported NBD target (want /dev/nbdX, nbd://HOST[:PORT] or nbd+unix:///?socket=PATH)", s)
	}
}

// uri is the target in NBD URI form, for logs and clients.
func (t nbdTarget) uri(ln net.Listener) string {
	if t.network == "unix" {
		return "nbd+unix:///?socket=" + t.address
	}
	return "nbd://" + ln.Addr().String()
}

// listen opens the target. A stale unix socket (one nobody answers on) is
// replaced; anything else at the path is refused.
func (t nbdTarget) listen() (net.Listener, error) {
	if t.network == "unix" {
		if st, err := os.Lstat(t.address); err == nil {
			if st.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("listen on %s: exists and is not a socket", t.address)
			}
			if c, err := net.Dial("unix", t.address); err == nil {
				c.Close()
				return nil, fmt.Errorf("listen on %s: another server is using this socket", t.address)
			}
			if err := os.Remove(t.address); err != nil {
				return nil, fmt.Errorf("remove stale socket: %w", err)
			}
		}
	}
	ln, err := net.Listen(t.network, t.address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", t.address, err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true)
	}
	return ln, nil
}
