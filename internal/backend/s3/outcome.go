package s3

import "errors"

// HTTPStatus returns the HTTP status of a failed request's error, or 0 if
// it carries none (for the request counters of the stats).
func HTTPStatus(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// IsTimeout reports whether err is a request that got no answer within
// --timeout.
func IsTimeout(err error) bool { return errors.Is(err, errTimeout) }
