package stats

import "sync/atomic"

// NBD command names, as the nbd server reports them.
var nbdCommands = [...]string{"read", "write", "flush", "trim", "write_zeroes", "cache", "block_status"}

const numNBDCommands = len(nbdCommands) + 1 // the last slot counts anything else

func nbdIndex(cmd string) int {
	for i, c := range nbdCommands {
		if c == cmd {
			return i
		}
	}
	return len(nbdCommands)
}

func nbdName(i int) string {
	if i < len(nbdCommands) {
		return nbdCommands[i]
	}
	return "other"
}

type nbdCell struct {
	requests, errors, bytes atomic.Uint64
}

// NBD counts the NBD server's connections and requests; it is the
// server's nbd.Observer.
type NBD struct {
	used   atomic.Bool
	open   atomic.Int64
	total  atomic.Uint64
	ranges [numNBDCommands]nbdCell
}

// ConnectionOpened and ConnectionClosed bracket each client session.
func (n *NBD) ConnectionOpened() {
	n.used.Store(true)
	n.open.Add(1)
	n.total.Add(1)
}

func (n *NBD) ConnectionClosed() { n.open.Add(-1) }

// RequestDone counts one request of cmd over length bytes.
func (n *NBD) RequestDone(cmd string, length uint32, failed bool) {
	n.used.Store(true)
	c := &n.ranges[nbdIndex(cmd)]
	c.requests.Add(1)
	c.bytes.Add(uint64(length))
	if failed {
		c.errors.Add(1)
	}
}

// NBDCommand is a snapshot of one command's counters.
type NBDCommand struct {
	Name                    string
	Requests, Errors, Bytes uint64
}

// NBDSnapshot is the NBD counters at one moment.
type NBDSnapshot struct {
	Used             bool // an NBD server is reporting here
	Connections      int64
	TotalConnections uint64
	Commands         [numNBDCommands]NBDCommand
}

// Command returns the counters of the named command.
func (s *NBDSnapshot) Command(name string) NBDCommand { return s.Commands[nbdIndex(name)] }

func (n *NBD) snapshot() NBDSnapshot {
	s := NBDSnapshot{Used: n.used.Load(), Connections: n.open.Load(), TotalConnections: n.total.Load()}
	for i := range n.ranges {
		c := &n.ranges[i]
		s.Commands[i] = NBDCommand{Name: nbdName(i), Requests: c.requests.Load(), Errors: c.errors.Load(), Bytes: c.bytes.Load()}
	}
	return s
}

func (s NBDSnapshot) sub(b NBDSnapshot) NBDSnapshot {
	s.TotalConnections -= b.TotalConnections
	for i := range s.Commands {
		s.Commands[i].Requests -= b.Commands[i].Requests
		s.Commands[i].Errors -= b.Commands[i].Errors
		s.Commands[i].Bytes -= b.Commands[i].Bytes
	}
	return s
}
