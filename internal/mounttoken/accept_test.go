package mounttoken

import (
	"context"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/testenv/lockedbuf"
)

// A flag holding the token a cache file recorded is that file's crashed
// mount: taken over without --force, keeping the token. Any other token
// is still refused.
func TestAcquireAcceptsCacheFileToken(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	plant(t, b, "2d3806ab", "thishost\n20261124T172910Z\n")
	var log lockedbuf.Buffer
	l, err := Acquire(ctx, b, prefix, AcquireOptions{Accept: 0x2d3806ab, Token: 0x2d3806ab, Logger: textLogger(&log)})
	if err != nil {
		t.Fatalf("accepted token refused: %v", err)
	}
	if l.Token() != 0x2d3806ab || token(t, b) != 0x2d3806ab {
		t.Fatalf("token %#x, flag %#x; want the accepted one kept", l.Token(), token(t, b))
	}
	if !strings.Contains(log.String(), "taking over") {
		t.Errorf("no log of the take-over: %s", log.String())
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}

	plant(t, b, "11111111", "otherhost\n20261124T172910Z\n")
	_, err = Acquire(ctx, b, prefix, AcquireOptions{Accept: 0x2d3806ab})
	alreadyMounted(t, err)
	if !strings.Contains(err.Error(), "--reset-mounted-flag") {
		t.Fatalf("message does not name the fix: %v", err)
	}
	// A chosen token is the one written.
	if err := Clear(ctx, b, prefix); err != nil {
		t.Fatal(err)
	}
	l, err = Acquire(ctx, b, prefix, AcquireOptions{Token: 0x1234})
	if err != nil || l.Token() != 0x1234 || token(t, b) != 0x1234 {
		t.Fatalf("chosen token: %v, %#x", err, token(t, b))
	}
	// Shared mode ignores both.
	_ = l.Release(ctx)
	l, err = Acquire(ctx, b, prefix, AcquireOptions{Token: 0x1234, Shared: true})
	if err != nil || l.Token() != Shared {
		t.Fatalf("shared: %v, %#x", err, l.Token())
	}
}
