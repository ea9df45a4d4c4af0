package nbddev

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// pair is one connection: the kernel's end as a descriptor to hand over,
// ours as a net.Conn (non-blocking, with deadlines, for the server).
type pair struct {
	kernel int
	server net.Conn
}

func newPair() (pair, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return pair{}, fmt.Errorf("socketpair: %w", err)
	}
	f := os.NewFile(uintptr(fds[0]), "nbd-server")
	nc, err := net.FileConn(f) // a duplicate: f is closed either way
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		return pair{}, fmt.Errorf("socketpair: %w", err)
	}
	return pair{kernel: fds[1], server: nc}, nil
}

// newPairs makes n pairs, or none.
func newPairs(n int) ([]pair, error) {
	ps := make([]pair, 0, n)
	for range n {
		p, err := newPair()
		if err != nil {
			closePairs(ps)
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// closeKernelEnds closes our copies of the kernel's ends: once the kernel
// holds them (or has refused them) we have no use for them, and keeping
// them open would hide from the server that the kernel let go.
func closeKernelEnds(ps []pair) {
	for i := range ps {
		if ps[i].kernel >= 0 {
			unix.Close(ps[i].kernel)
			ps[i].kernel = -1
		}
	}
}

func closePairs(ps []pair) {
	closeKernelEnds(ps)
	for _, p := range ps {
		p.server.Close()
	}
}

func kernelFDs(ps []pair) []int {
	fds := make([]int, len(ps))
	for i, p := range ps {
		fds[i] = p.kernel
	}
	return fds
}
