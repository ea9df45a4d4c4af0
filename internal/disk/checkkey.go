package disk

import (
	"context"
	"fmt"
	"sync"

	"github.com/s3backer-go/s3backer/internal/codec"
)

// checkKey authenticates one stored block with the configured key: block 0,
// or (a zero block 0 is not stored) the first block a listing finds.
func checkKey(ctx context.Context, st *codec.Store) error {
	if checked, err := st.CheckKey(ctx, 0); err != nil || checked {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	found, first := false, uint64(0)
	err := st.Survey(sctx, func(n uint64) {
		mu.Lock()
		if !found {
			found, first = true, n
		}
		mu.Unlock()
		cancel() // one is enough
	})
	if !found {
		if err != nil {
			return fmt.Errorf("look for a block to check the password against: %w", err)
		}
		return nil // an empty disk: nothing to check yet
	}
	_, err = st.CheckKey(ctx, first)
	return err
}
