package codec

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
)

func TestCheckKey(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	// A new disk: nothing to check against.
	if checked, err := encStore(t, b, nil).CheckKey(ctx); checked || err != nil {
		t.Fatalf("empty bucket: %v, %v", checked, err)
	}
	plantKnownBlock(t, b) // block 0, password pw
	if checked, err := encStore(t, b, nil).CheckKey(ctx); !checked || err != nil {
		t.Fatalf("right password: %v, %v", checked, err)
	}
	before := b.Counts().Gets
	checked, err := encStore(t, b, func(o *Options) { o.Password = []byte("wrong") }).CheckKey(ctx)
	if checked || !errors.Is(err, ErrAuth) ||
		!strings.HasPrefix(err.Error(), "wrong password or cipher for mybucket/disk1/: block 0 fails authentication") {
		t.Fatalf("wrong password: %v, %v", checked, err)
	}
	if n := b.Counts().Gets - before; n != 1 {
		t.Errorf("check cost %d GETs, want 1", n)
	}
	_, err = encStore(t, b, func(o *Options) { o.Encrypt = "AES-256-CBC" }).CheckKey(ctx)
	if !errors.Is(err, ErrEncryptionMismatch) || !strings.Contains(err.Error(), "AES-128-CBC") {
		t.Fatalf("other cipher: %v", err)
	}
	// Without encryption there is nothing to check, and no request.
	before = b.Counts().Gets
	if checked, err := newStore(t, b, Options{Prefix: "disk1/", HashPrefix: true, BlockSize: 4096, NumBlocks: 256}).CheckKey(ctx); checked || err != nil {
		t.Fatalf("no encryption: %v, %v", checked, err)
	}
	if b.Counts().Gets != before {
		t.Error("CheckKey without encryption made a request")
	}
}

// Block 0 may be zero (absent): the caller names others, and the first
// that exists is checked.
func TestCheckKeyCandidates(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	s := encStore(t, b, nil)
	if err := s.WriteBlock(ctx, 9, mixed(4096)); err != nil {
		t.Fatal(err)
	}
	if checked, err := s.CheckKey(ctx, 0, 3, 9, 12); !checked || err != nil {
		t.Fatalf("right password: %v, %v", checked, err)
	}
	_, err := encStore(t, b, func(o *Options) { o.Password = []byte("x") }).CheckKey(ctx, 0, 9)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "block 9 fails authentication") {
		t.Fatalf("wrong password: %v", err)
	}
	if checked, err := s.CheckKey(ctx, 1, 2); checked || err != nil {
		t.Fatalf("absent blocks: %v, %v", checked, err)
	}
	if _, err := s.CheckKey(ctx, 256); err == nil {
		t.Fatal("block beyond the disk accepted")
	}
	// A disk that is not encrypted at all.
	put(t, b, s.Key(0), mixed(4096), backend.Meta{ContentType: blockContentType})
	if _, err := s.CheckKey(ctx); !errors.Is(err, ErrEncryptionMismatch) || !strings.Contains(err.Error(), "not encrypted") {
		t.Fatalf("plain block: %v", err)
	}
}
