package mounttoken

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
)

func TestNewToken(t *testing.T) {
	seen := map[uint32]bool{}
	for range 10000 {
		tok := NewToken()
		if tok == 0 || tok >= Shared {
			t.Fatalf("NewToken() = %#x, want 1 .. 0x7ffffffe", tok)
		}
		seen[tok] = true
	}
	if len(seen) < 9990 {
		t.Fatalf("only %d distinct tokens in 10000", len(seen))
	}
}

func TestWriteFormat(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	before := time.Now().UTC().Truncate(time.Second)
	if err := Write(ctx, b, "disk1/", 0x2a); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UTC()
	buf := make([]byte, 4096)
	n, info, err := b.Get(ctx, "disk1/s3backer-mounted", buf, backend.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.ContentType != "text/plain" || info.ContentEncoding != "" {
		t.Errorf("Content-Type %q, Content-Encoding %q", info.ContentType, info.ContentEncoding)
	}
	if len(info.User) != 1 || info.User["s3backer-mount-token"] != "0000002a" {
		t.Errorf("metadata %v, want s3backer-mount-token: 0000002a", info.User)
	}
	host, _ := os.Hostname()
	lines := strings.Split(string(buf[:n]), "\n")
	if len(lines) != 3 || lines[0] != host || lines[2] != "" || len(lines[1]) != 16 {
		t.Fatalf("body %q, want %q + newline + YYYYMMDDTHHMMSSZ + newline", buf[:n], host)
	}
	when, err := time.Parse("20060102T150405Z", lines[1])
	if err != nil || when.Before(before) || when.After(after) {
		t.Fatalf("time %q (%v) not between %v and %v", lines[1], err, before, after)
	}
	if keys := b.Keys(); len(keys) != 1 || keys[0] != "disk1/s3backer-mounted" {
		t.Fatalf("keys %v", keys)
	}
	if err := Write(ctx, b, "disk1/", 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Write(0): %v, want EINVAL", err)
	}
}

func TestReadAndClear(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	if tok, ok, err := Read(ctx, b, "p/"); tok != 0 || ok || err != nil {
		t.Fatalf("Read of no flag = %#x, %v, %v", tok, ok, err)
	}
	for _, tok := range []uint32{1, 0x2d3806ab, Shared, 0xfffffffe} {
		if err := Write(ctx, b, "p/", tok); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := Read(ctx, b, "p/"); got != tok || !ok || err != nil {
			t.Fatalf("Read after Write(%#x) = %#x, %v, %v", tok, got, ok, err)
		}
	}
	if err := Clear(ctx, b, "p/"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := Read(ctx, b, "p/"); ok {
		t.Fatal("flag still there after Clear")
	}
	if err := Clear(ctx, b, "p/"); err != nil {
		t.Fatalf("Clear of no flag: %v", err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := Read(ctx2, b, "p/"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read with a failing HEAD: %v", err)
	}
}

// Before 1.5 the flag was an object with no token; s3backer reads it as 1.
func TestReadOldAndOddFlags(t *testing.T) {
	ctx := context.Background()
	for v, want := range map[string]uint32{
		"": 1, "0": 1, "00000000": 1, "junk": 1, "2D3806AB": 0x2d3806ab, " 10": 0x10, "0x10": 0x10,
	} {
		b := mem.New()
		meta := backend.Meta{User: map[string]string{"s3backer-mount-token": v}}
		if v == "" {
			meta.User = nil
		}
		if _, err := b.Put(ctx, "s3backer-mounted", []byte("mounted"), meta); err != nil {
			t.Fatal(err)
		}
		if tok, ok, err := Read(ctx, b, ""); tok != want || !ok || err != nil {
			t.Errorf("token header %q: Read = %#x, %v, %v; want %#x", v, tok, ok, err, want)
		}
	}
}

func TestParseBody(t *testing.T) {
	for body, want := range map[string]Flag{
		"vm\n20261124T172910Z\n": {Host: "vm", Time: time.Date(2026, 11, 24, 17, 29, 10, 0, time.UTC)},
		"vm\nyesterday\n":        {Host: "vm"},
		"vm":                     {},
		"":                       {},
		"\n20261124T172910Z\n":   {},
	} {
		if got := parseBody([]byte(body)); got != want {
			t.Errorf("parseBody(%q) = %+v, want %+v", body, got, want)
		}
	}
}

// A flag with an unexpectedly large body still gives its token.
func TestLargeFlagBody(t *testing.T) {
	b := mem.New()
	meta := backend.Meta{User: map[string]string{"s3backer-mount-token": "00000abc"}}
	if _, err := b.Put(context.Background(), "s3backer-mounted", make([]byte, 5000), meta); err != nil {
		t.Fatal(err)
	}
	f, ok, err := stat(context.Background(), b, "")
	if err != nil || !ok || f.Token != 0xabc {
		t.Fatalf("stat of a large flag = %+v, %v, %v", f, ok, err)
	}
}
