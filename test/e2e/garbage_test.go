package e2e

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Clients that send garbage, stop half way or ask for absurd sizes are
// dropped or refused; a well-behaved client keeps working throughout and
// the server never crashes.
func TestGarbageClients(t *testing.T) {
	need(t, "nbdsh")
	s := startServer(t, t.TempDir(), true, "--size=4M", "--blockSize=4k")
	addr := strings.TrimPrefix(s.URI, "nbd://")

	garbage := []func(c net.Conn){
		func(c net.Conn) { // random bytes at once
			b := make([]byte, 4096)
			_, _ = rand.Read(b)
			_, _ = c.Write(b)
		},
		func(c net.Conn) { // right client flags, then half an option header
			_, _ = c.Write([]byte{0, 0, 0, 3, 'I', 'H', 'A', 'V'})
		},
		func(c net.Conn) { // an option with an absurd length
			b := []byte{0, 0, 0, 3}
			b = append(b, "IHAVEOPT"...)
			b = binary.BigEndian.AppendUint32(b, 7) // NBD_OPT_GO
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			_, _ = c.Write(b)
		},
		func(c net.Conn) { // a valid handshake, then an oversized write
			b := []byte{0, 0, 0, 3}
			b = append(b, "IHAVEOPT"...)
			b = binary.BigEndian.AppendUint32(b, 1) // NBD_OPT_EXPORT_NAME
			b = binary.BigEndian.AppendUint32(b, 0)
			b = binary.BigEndian.AppendUint32(b, 0x25609513)
			b = binary.BigEndian.AppendUint16(b, 0)
			b = binary.BigEndian.AppendUint16(b, 1) // WRITE
			b = binary.BigEndian.AppendUint64(b, 42)
			b = binary.BigEndian.AppendUint64(b, 0)
			b = binary.BigEndian.AppendUint32(b, 0xfffffff0)
			_, _ = c.Write(b)
			_, _ = c.Write(make([]byte, 1<<16))
		},
		func(c net.Conn) { // a valid handshake, then a request with bad magic
			b := []byte{0, 0, 0, 3}
			b = append(b, "IHAVEOPT"...)
			b = binary.BigEndian.AppendUint32(b, 1)
			b = binary.BigEndian.AppendUint32(b, 0)
			b = append(b, make([]byte, 28)...)
			_, _ = c.Write(b)
		},
	}
	var wg sync.WaitGroup
	for round := 0; round < 3; round++ {
		for _, g := range garbage {
			wg.Add(1)
			go func(g func(net.Conn)) {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				g(c)
				// Read whatever the server answers until it hangs up or the
				// deadline passes; either is fine, a crash is not.
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}(g)
		}
		// Meanwhile a good client works.
		run(t, "nbdsh", "-u", s.URI, "-c", `
import os
d = os.urandom(10000)
h.pwrite(d, 5000)
assert h.pread(10000, 5000) == d
`)
	}
	wg.Wait()
	run(t, "nbdsh", "-u", s.URI, "-c", `assert h.get_size() == 4 << 20`)
	s.stop(syscall.SIGTERM)
	if strings.Contains(s.logText(), "panic") {
		t.Fatalf("server log mentions a panic:\n%s", s.logText())
	}
}
