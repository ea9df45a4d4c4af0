package nbd

// Observer is told of every session and every request the server serves,
// for statistics (Options.Observer). Its methods run on the connection's
// goroutines and must not block.
type Observer interface {
	// ConnectionOpened and ConnectionClosed bracket each session, the
	// kernel's included.
	ConnectionOpened()
	ConnectionClosed()
	// RequestDone reports a request that reached the device, by command
	// name ("read", "write", "flush", "trim", "write_zeroes", "cache",
	// "block_status"), its length and whether it was answered with an
	// error.
	RequestDone(cmd string, length uint32, failed bool)
}

type nopObserver struct{}

func (nopObserver) ConnectionOpened()                {}
func (nopObserver) ConnectionClosed()                {}
func (nopObserver) RequestDone(string, uint32, bool) {}
