package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/memstore"
	"github.com/s3backer-go/s3backer/internal/volume"
)

func TestBlockSizes(t *testing.T) {
	for _, c := range []struct {
		bs        int64
		preferred uint32
	}{
		{4096, 4096}, {1 << 20, 1 << 20}, {256, 512}, {3 << 10, 2 << 10}, {64 << 20, 32 << 20}, {48 << 20, 32 << 20},
	} {
		mi, pr, ma := blockSizes(c.bs)
		// nbdkit refuses anything but a power of two from 512 to 32 MiB
		// for preferred, and minimum <= preferred <= maximum.
		if mi != 1 || pr != c.preferred || ma != 32<<20 || pr&(pr-1) != 0 {
			t.Errorf("blockSizes(%d) = %d, %d, %d; want 1, %d, %d", c.bs, mi, pr, ma, c.preferred, 32<<20)
		}
	}
}

func TestErrnoOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{blockstore.ErrReadOnly, syscall.EROFS},
		{fmt.Errorf("write: %w", syscall.ENOSPC), syscall.ENOSPC},
		{blockstore.ErrCorrupt, syscall.EIO},
		{errors.New("S3 said no"), syscall.EIO},
		{fmt.Errorf("x: %w", context.Canceled), syscall.ESHUTDOWN},
	} {
		if got := errnoOf(c.err); got != c.want {
			t.Errorf("errnoOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// Extents are reported from the requested offset on, holes marked as
// reading zeroes; with REQ_ONE only the first.
func TestExtents(t *testing.T) {
	st := memstore.New(4096, 8)
	vol := volume.New(st, volume.Options{})
	data := make([]byte, 4096)
	data[0] = 1
	for _, n := range []int64{2, 3, 6} {
		if err := vol.WriteAt(context.Background(), data, n*4096, false); err != nil {
			t.Fatal(err)
		}
	}
	p := &plugin{vol: vol}
	collect := func(off, count int64, reqOne bool) []string {
		var got []string
		err := p.extents(off, count, reqOne, func(o, l int64, typ uint32) error {
			got = append(got, fmt.Sprintf("%d+%d:%d", o, l, typ))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := collect(0, 8*4096, false), []string{"0+8192:3", "8192+8192:0", "16384+8192:3", "24576+4096:0", "28672+4096:3"}; !slices.Equal(got, want) {
		t.Errorf("whole disk: %q, want %q", got, want)
	}
	// From inside a block: the first extent starts at the offset.
	if got, want := collect(9000, 10000, false), []string{"9000+7384:0", "16384+2616:3"}; !slices.Equal(got, want) {
		t.Errorf("part: %q, want %q", got, want)
	}
	if got, want := collect(0, 8*4096, true), []string{"0+8192:3"}; !slices.Equal(got, want) {
		t.Errorf("REQ_ONE: %q, want %q", got, want)
	}
	// An error from nbdkit_add_extent stops the walk.
	calls := 0
	err := p.extents(0, 8*4096, false, func(int64, int64, uint32) error { calls++; return syscall.EIO })
	if err == nil || calls != 1 {
		t.Errorf("add failing: %v after %d calls", err, calls)
	}
}

// validate gives the same one-line messages as the command line, and
// reads the password where --passwordFile says.
func TestValidate(t *testing.T) {
	if _, err := validate([][2]string{{"size", "1q"}, {"test", "true"}, {"bucket", "d"}}); err == nil ||
		!strings.Contains(err.Error(), `--size=1q: invalid size "1q"`) {
		t.Errorf("bad size: %v", err)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pw, err := validate([][2]string{{"encrypt", "true"}, {"s3b_passwordFile", pwFile}, {"bucket", "b"}})
	if err != nil || string(pw) != "secret" {
		t.Errorf("password %q, %v", pw, err)
	}
	if pw, err := validate([][2]string{{"size", "1m"}, {"bucket", "b"}}); err != nil || pw != nil {
		t.Errorf("no encryption: %q, %v", pw, err)
	}
}
