// Package exitcode holds every exit status the s3backer command uses, in one
// place, so scripts and systemd units can tell failures apart.
package exitcode

const (
	// OK: clean run and clean stop.
	OK = 0
	// Failure: a runtime error (storage unreachable, I/O error, lost data
	// could not be written back, ...). s3backer uses 1 for every error.
	Failure = 1
	// Usage: a bad command line or config file; nothing was touched.
	Usage = 2
)

// UsageError marks a problem with the command line or the configuration:
// nothing was touched, and the command exits with Usage.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }
