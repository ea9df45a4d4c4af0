package mounttoken

import (
	"context"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend/mem"
)

// A flag this host set is given StopGrace to disappear (a mount that was
// just unmounted may still be clearing it): cleared in time, the mount
// goes ahead; still there after the grace, it is refused — and only then.
func TestAcquireGraceForThisHost(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Skipf("no host name: %v", err)
	}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := mem.New()
		plant(t, b, "2d3806ab", host+"\n20261124T172910Z\n")
		go func() {
			time.Sleep(StopGrace / 2) // the stopping mount clears it (fake clock)
			if err := Clear(ctx, b, prefix); err != nil {
				t.Error(err)
			}
		}()
		start := time.Now()
		l, err := Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket"})
		if err != nil {
			t.Fatalf("flag cleared within the grace, still refused: %v", err)
		}
		if waited := time.Since(start); waited < StopGrace/2 || waited >= StopGrace {
			t.Errorf("waited %v, want from %v to %v", waited, StopGrace/2, StopGrace)
		}
		if token(t, b) != l.Token() {
			t.Fatal("the new mount's token is not set")
		}

		start = time.Now()
		_, err = Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket"})
		alreadyMounted(t, err)
		if waited := time.Since(start); waited < StopGrace {
			t.Errorf("refused after %v, before the grace of %v", waited, StopGrace)
		}

		// Another host's flag is refused at once.
		plant(t, b, "2d3806ab", "otherhost\n20261124T172910Z\n")
		start = time.Now()
		_, err = Acquire(ctx, b, prefix, AcquireOptions{Bucket: "mybucket"})
		alreadyMounted(t, err)
		if waited := time.Since(start); waited != 0 {
			t.Errorf("another host's flag: waited %v", waited)
		}
	})
}
