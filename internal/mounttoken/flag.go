package mounttoken

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// Flag is what a present flag says: its token and, when its body has
// them, the host that set it and when.
type Flag struct {
	Token uint32
	Host  string    // "" if the body did not say
	Time  time.Time // zero if the body did not say
}

// maxBody is more than a flag body can be (a host name is at most 255
// bytes); a larger object still gives its token, through a HEAD.
const maxBody = 1024

// stat reads the flag with its body (one GET), for messages that name who
// holds it.
func stat(ctx context.Context, b backend.Backend, prefix string) (Flag, bool, error) {
	buf := make([]byte, maxBody)
	n, info, err := b.Get(ctx, Key(prefix), buf, backend.GetOptions{})
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return Flag{}, false, nil
	case errors.Is(err, backend.ErrTooLarge):
		t, ok, err := Read(ctx, b, prefix)
		return Flag{Token: t}, ok, err
	case err != nil:
		return Flag{}, false, fmt.Errorf("read mount flag: %w", err)
	}
	f := parseBody(buf[:n])
	f.Token = parseToken(info.User[metaToken])
	return f, true, nil
}

// parseBody reads "HOST\nTIME\n"; a body of another shape (pre-1.5 flags)
// gives what it can.
func parseBody(b []byte) Flag {
	var f Flag
	lines := strings.SplitN(string(b), "\n", 3)
	if host := strings.TrimSpace(lines[0]); len(lines) > 1 && host != "" {
		f.Host = host
		if t, err := time.Parse(timeLayout, strings.TrimSpace(lines[1])); err == nil {
			f.Time = t
		}
	}
	return f
}
