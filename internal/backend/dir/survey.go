package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
)

// Survey reports every block file in the directory (blockstore.Surveyor),
// as s3backer's test mode does for --listBlocks: names that do not parse
// (temporary files, other prefixes) are skipped.
func (s *Store) Survey(ctx context.Context, fn func(n uint64)) error {
	if s.opt.Discard {
		return nil
	}
	// A prefix with '/' puts blocks in a subdirectory; list that one.
	sub, _ := path.Split(s.opt.Prefix)
	d, err := os.Open(filepath.Join(s.opt.Dir, filepath.FromSlash(sub)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("survey: %w", err)
	}
	defer d.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, err := d.Readdirnames(4096)
		for _, name := range names {
			if n, ok := s.names.Parse(sub + name); ok {
				fn(n)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("survey %s: %w", d.Name(), err)
		}
	}
}
