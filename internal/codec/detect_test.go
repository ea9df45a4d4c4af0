package codec

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
)

func TestDetectWhatWeWrote(t *testing.T) {
	ctx := context.Background()
	for _, hash := range []bool{false, true} {
		s, b := memStore(t, func(o *Options) { o.HashPrefix = hash; o.BlockSize, o.NumBlocks = 65536, 1<<16 }) // 4 GiB
		if err := s.WriteBlock(ctx, 0, fill(65536, 1)); err != nil {
			t.Fatal(err)
		}
		heads := b.Counts().Heads
		size, bs, found, err := Detect(ctx, b, "disk1/", hash)
		if err != nil || !found || size != 1<<32 || bs != 65536 {
			t.Fatalf("hash %v: Detect = %d, %d, %v, %v; want 4 GiB, 64 KiB", hash, size, bs, found, err)
		}
		if h := b.Counts().Heads - heads; h != 1 {
			t.Fatalf("Detect made %d HEADs, want 1", h)
		}
		// The other naming does not find it.
		if _, _, found, err := Detect(ctx, b, "disk1/", !hash); found || err != nil {
			t.Fatalf("Detect with the other naming: %v, %v", found, err)
		}
		// Zeroing block 0 deletes the geometry with it.
		if err := s.WriteBlock(ctx, 0, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, found, err := Detect(ctx, b, "disk1/", hash); found || err != nil {
			t.Fatalf("Detect after zeroing block 0: %v, %v", found, err)
		}
	}
}

func TestDetectHeaders(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		user      map[string]string
		size, bs  int64
		found     bool
		suspect   bool
		errSubstr string
	}{
		{"both", map[string]string{"s3backer-blocksize": "4096", "s3backer-filesize": "1048576"}, 1048576, 4096, true, false, ""},
		{"spaces", map[string]string{"s3backer-blocksize": " 4096", "s3backer-filesize": "1048576 "}, 1048576, 4096, true, false, ""},
		{"none", nil, 0, 0, false, false, ""},
		{"no blocksize", map[string]string{"s3backer-filesize": "1048576"}, 0, 0, false, false, ""},
		{"zero blocksize", map[string]string{"s3backer-blocksize": "0", "s3backer-filesize": "1048576"}, 0, 0, false, false, ""},
		{"junk blocksize", map[string]string{"s3backer-blocksize": "4k", "s3backer-filesize": "1048576"}, 0, 0, false, false, ""},
		{"no filesize", map[string]string{"s3backer-blocksize": "4096"}, 0, 4096, false, false, ""},
		{"junk filesize", map[string]string{"s3backer-blocksize": "4096", "s3backer-filesize": "-1"}, 0, 4096, false, false, ""},
		// 1.5.x on a 4 GiB disk: the size wrapped to 0.
		{"1.5.x 4 GiB", map[string]string{"s3backer-blocksize": "4096", "s3backer-filesize": "0"}, 0, 4096, false, true, "1.5.x"},
		{"not a multiple", map[string]string{"s3backer-blocksize": "4096", "s3backer-filesize": "1000"}, 1000, 4096, false, true, "not a multiple"},
	} {
		b := mem.New()
		put(t, b, "p/00000000", fill(4096, 1), backend.Meta{User: c.user})
		size, bs, found, err := Detect(ctx, b, "p/", false)
		if size != c.size || bs != c.bs || found != c.found {
			t.Errorf("%s: Detect = %d, %d, %v; want %d, %d, %v", c.name, size, bs, found, c.size, c.bs, c.found)
		}
		if c.suspect {
			if !errors.Is(err, ErrSizeSuspect) || !strings.Contains(err.Error(), "--size") ||
				!strings.Contains(err.Error(), c.errSubstr) || !strings.Contains(err.Error(), "p/00000000") {
				t.Errorf("%s: error %v, want ErrSizeSuspect naming the key, %q and --size", c.name, err, c.errSubstr)
			}
		} else if err != nil {
			t.Errorf("%s: error %v", c.name, err)
		}
	}
}

func TestDetectErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, found, err := Detect(ctx, mem.New(), "", false)
	if found || !errors.Is(err, context.Canceled) {
		t.Fatalf("Detect with a failing HEAD: %v, %v", found, err)
	}
	_, _, found, err = Detect(context.Background(), mem.New(), "", false)
	if found || err != nil {
		t.Fatalf("Detect on an empty bucket: %v, %v", found, err)
	}
}
