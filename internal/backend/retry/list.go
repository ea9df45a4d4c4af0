package retry

import (
	"context"
	"fmt"
)

// List restarts a failed listing after the last key it delivered, so fn
// never sees a key twice. An error from fn itself ends the listing at once.
func (b *Backend) List(ctx context.Context, prefix, startAfter string, fn func(key string) error) error {
	var (
		last      string // last key handed to fn
		resumedAt string // last as of the latest attempt's start
		fnErr     bool
	)
	deliver := func(key string) error {
		last = key
		if err := fn(key); err != nil {
			fnErr = true
			return err
		}
		return nil
	}
	what := fmt.Sprintf("prefix %q", prefix)
	progressed := func() bool { return last != resumedAt }
	return b.do(ctx, "list", what, progressed, func() error {
		from := max(startAfter, last)
		resumedAt = last
		err := b.next.List(ctx, prefix, from, deliver)
		if err != nil && fnErr {
			return &finalError{err}
		}
		return err
	})
}
