package dir

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/blockstore"
	"github.com/s3backer-go/s3backer/internal/blockstore/storetest"
)

func open(t *testing.T, opt Options) *Store {
	t.Helper()
	s, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, o := range []Options{{}, {Prefix: "disk1/", HashPrefix: true}} {
		t.Run(o.Prefix, func(t *testing.T) {
			storetest.Run(t, storetest.Harness{
				New: func(t *testing.T, bs int, n uint64) blockstore.Store {
					o := o
					o.Dir, o.BlockSize, o.NumBlocks = t.TempDir(), bs, n
					return open(t, o)
				},
				Reopen: func(t *testing.T, s blockstore.Store) blockstore.Store {
					old := s.(*Store)
					if err := old.Close(); err != nil {
						t.Fatal(err)
					}
					return open(t, old.opt)
				},
			})
		})
	}
}

// The files are exactly s3backer's: raw blocks named PREFIX[HASH-]HEX8,
// zero blocks removed, nothing else left behind.
func TestLayout(t *testing.T) {
	d := t.TempDir()
	s := open(t, Options{Dir: d, Prefix: "p-", HashPrefix: true, BlockSize: 512, NumBlocks: 1 << 20})
	data := bytes.Repeat([]byte{7}, 512)
	ctx := context.Background()
	for _, n := range []uint64{0, 5, 0x10} {
		if err := s.WriteBlock(ctx, n, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WriteBlock(ctx, 5, make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(d)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"p-5150b901-00000010", "p-c448b72c-00000000"}
	if len(names) != len(want) || names[0] != want[0] || names[1] != want[1] {
		t.Fatalf("directory holds %q, want %q", names, want)
	}
	got, _ := os.ReadFile(filepath.Join(d, "p-c448b72c-00000000"))
	if !bytes.Equal(got, data) {
		t.Fatal("block file is not the raw block")
	}
}

func TestTruncatedFileIsIOError(t *testing.T) {
	d := t.TempDir()
	s := open(t, Options{Dir: d, BlockSize: 512, NumBlocks: 8})
	if err := os.WriteFile(filepath.Join(d, "00000003"), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.ReadBlock(context.Background(), 3, make([]byte, 512))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("truncated block read: %v, want EIO", err)
	}
}

func TestReadOnly(t *testing.T) {
	s := open(t, Options{Dir: t.TempDir(), BlockSize: 512, NumBlocks: 8, ReadOnly: true})
	err := s.WriteBlock(context.Background(), 1, bytes.Repeat([]byte{1}, 512))
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write to read-only store: %v, want EROFS", err)
	}
}

func TestMissingDirectory(t *testing.T) {
	if _, err := Open(Options{Dir: filepath.Join(t.TempDir(), "nope"), BlockSize: 512, NumBlocks: 8}); err == nil {
		t.Fatal("Open of a missing directory succeeded")
	}
}

func TestSurvey(t *testing.T) {
	for _, o := range []Options{{}, {Prefix: "sub/disk-", HashPrefix: true}} {
		d := t.TempDir()
		o.Dir, o.BlockSize, o.NumBlocks = d, 512, 100
		s := open(t, o)
		want := map[uint64]bool{0: true, 7: true, 99: true}
		for n := range want {
			if err := s.WriteBlock(context.Background(), n, bytes.Repeat([]byte{1}, 512)); err != nil {
				t.Fatal(err)
			}
		}
		// Junk that must not be reported.
		junkDir := filepath.Dir(s.Path(0))
		for _, junk := range []string{"00000001.Ab12Cd", "s3backer-mounted", "00000064", "README"} {
			if err := os.WriteFile(filepath.Join(junkDir, junk), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got := map[uint64]bool{}
		if err := s.Survey(context.Background(), func(n uint64) { got[n] = true }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("prefix %q: survey found %v, want %v", o.Prefix, got, want)
		}
		for n := range want {
			if !got[n] {
				t.Fatalf("prefix %q: survey missed block %d", o.Prefix, n)
			}
		}
	}
}
