package aead

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
)

// testKDF is cheap: tests derive many keys.
var testKDF = KDF{Time: 1, MemoryKiB: 64, Threads: 1}

func testParams() Params {
	return Params{Bucket: "mybucket", Prefix: "disk1/", Salt: []byte("0123456789abcdef"), KDF: testKDF}
}

func derive(t testing.TB, pw string, p Params) *Cipher {
	t.Helper()
	c, err := Derive([]byte(pw), p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSealOpen(t *testing.T) {
	c := derive(t, "pw", testParams())
	for _, n := range []int{0, 1, 15, 16, 17, 4096, 1 << 20} {
		for _, inner := range []string{"", "deflate", "zstd"} {
			pt := bytes.Repeat([]byte{byte(n) | 1}, n)
			sealed, err := c.Seal([]byte("x"), pt, uint64(n), inner)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != 1+n+Overhead || sealed[0] != 'x' {
				t.Fatalf("%d bytes sealed to %d (with a 1-byte prefix)", n, len(sealed))
			}
			got, err := c.Open([]byte("y"), sealed[1:], uint64(n), inner)
			if err != nil || !bytes.Equal(got, append([]byte("y"), pt...)) {
				t.Fatalf("%d bytes, %q: %v", n, inner, err)
			}
		}
	}
	// Nonces are random: the same block sealed twice differs.
	a, _ := c.Seal(nil, []byte("same"), 1, "")
	b, _ := c.Seal(nil, []byte("same"), 1, "")
	if bytes.Equal(a[:12], b[:12]) || bytes.Equal(a, b) {
		t.Error("two seals of one block share a nonce")
	}
}

func TestOpenRefuses(t *testing.T) {
	p := testParams()
	c := derive(t, "pw", p)
	sealed, _ := c.Seal(nil, []byte("some compressed block data"), 7, "deflate")
	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 0x01; return b }
	other := func(mut func(*Params)) *Cipher { q := testParams(); mut(&q); return derive(t, "pw", q) }
	for name, f := range map[string]func() error{
		"nonce":        func() error { _, err := c.Open(nil, flip(0), 7, "deflate"); return err },
		"ciphertext":   func() error { _, err := c.Open(nil, flip(12), 7, "deflate"); return err },
		"tag":          func() error { _, err := c.Open(nil, flip(len(sealed)-1), 7, "deflate"); return err },
		"truncated":    func() error { _, err := c.Open(nil, sealed[:len(sealed)-1], 7, "deflate"); return err },
		"short":        func() error { _, err := c.Open(nil, sealed[:Overhead-1], 7, "deflate"); return err },
		"empty":        func() error { _, err := c.Open(nil, nil, 7, "deflate"); return err },
		"block":        func() error { _, err := c.Open(nil, sealed, 8, "deflate"); return err },
		"block 2^32+7": func() error { _, err := c.Open(nil, sealed, 1<<32+7, "deflate"); return err },
		"compression":  func() error { _, err := c.Open(nil, sealed, 7, "zstd"); return err },
		"uncompressed": func() error { _, err := c.Open(nil, sealed, 7, ""); return err },
		"password":     func() error { _, err := derive(t, "pW", p).Open(nil, sealed, 7, "deflate"); return err },
		"bucket": func() error {
			_, err := other(func(q *Params) { q.Bucket = "mybucket2" }).Open(nil, sealed, 7, "deflate")
			return err
		},
		"prefix": func() error {
			_, err := other(func(q *Params) { q.Prefix = "disk2/" }).Open(nil, sealed, 7, "deflate")
			return err
		},
		// Bucket "a" prefix "b/" must not collide with bucket "ab" prefix "/".
		"bucket/prefix split": func() error {
			q := testParams()
			q.Bucket, q.Prefix = "a", "bc"
			s, _ := derive(t, "pw", q).Seal(nil, []byte("x"), 1, "")
			q.Bucket, q.Prefix = "ab", "c"
			_, err := derive(t, "pw", q).Open(nil, s, 1, "")
			return err
		},
		"salt": func() error {
			_, err := other(func(q *Params) { q.Salt = []byte("0123456789abcdeF") }).Open(nil, sealed, 7, "deflate")
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", name, err)
		}
	}
}

// The format as docs/encryption.md states it, built from the standard
// library alone: what Seal makes opens by hand, and the reverse.
func TestFormatIsAsDocumented(t *testing.T) {
	p := testParams()
	c := derive(t, "pw", p)
	const block = 0x1234
	info := binary.BigEndian.AppendUint64([]byte("s3backer-go/AES-256-GCM/block-key/v1"), block)
	key, err := hkdf.Expand(sha256.New, c.master, string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	lp := func(b []byte, s string) []byte { return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...) }
	aad := lp(lp([]byte("s3backer-go/AES-256-GCM/block/v1"), "mybucket"), "disk1/")
	aad = lp(binary.BigEndian.AppendUint64(aad, block), "zstd")
	b, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(b)

	pt := []byte("plaintext of block 0x1234")
	sealed, err := c.Seal(nil, pt, block, "zstd")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := g.Open(nil, sealed[:12], sealed[12:], aad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Seal's output does not open as documented: %v", err)
	}
	nonce := bytes.Repeat([]byte{9}, 12)
	byHand := g.Seal(bytes.Clone(nonce), nonce, pt, aad)
	if got, err := c.Open(nil, byHand, block, "zstd"); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("a block sealed as documented does not open: %v", err)
	}
}

// Known answers, so that a change to the key schedule cannot pass
// unnoticed: it would make every existing disk unreadable.
func TestKnownAnswers(t *testing.T) {
	c := derive(t, "pw", testParams())
	if got := hex.EncodeToString(c.master); got != wantMaster {
		t.Errorf("master key %s, want %s", got, wantMaster)
	}
	if got := hex.EncodeToString(c.Check()); got != wantCheck {
		t.Errorf("check %s, want %s", got, wantCheck)
	}
	sealed, _ := hex.DecodeString(knownSealed)
	if got, err := c.Open(nil, sealed, 5, "deflate"); err != nil || string(got) != "known block" {
		t.Errorf("known block: %q, %v", got, err)
	}
}

func TestCheck(t *testing.T) {
	p := testParams()
	c := derive(t, "pw", p)
	if !c.Verify(c.Check()) || len(c.Check()) != CheckSize {
		t.Fatal("a key does not verify its own check value")
	}
	if derive(t, "pW", p).Verify(c.Check()) {
		t.Error("another password verifies")
	}
	for name, mut := range map[string]func(*Params){
		"bucket":  func(q *Params) { q.Bucket = "b2" },
		"prefix":  func(q *Params) { q.Prefix = "" },
		"salt":    func(q *Params) { q.Salt = []byte("fedcba9876543210") },
		"time":    func(q *Params) { q.KDF.Time = 2 },
		"memory":  func(q *Params) { q.KDF.MemoryKiB = 72 },
		"threads": func(q *Params) { q.KDF.Threads = 2 },
	} {
		q := testParams()
		mut(&q)
		if derive(t, "pw", q).Verify(c.Check()) {
			t.Errorf("check value verifies with another %s", name)
		}
	}
	if c.Verify(nil) || c.Verify(c.Check()[:31]) {
		t.Error("short check value verifies")
	}
}

func TestKDFValidate(t *testing.T) {
	for _, k := range []KDF{DefaultKDF, testKDF, {Time: 64, MemoryKiB: 4 << 20, Threads: 255}} {
		if err := k.Validate(); err != nil {
			t.Errorf("%v: %v", k, err)
		}
	}
	for _, k := range []KDF{{}, {Time: 0, MemoryKiB: 64, Threads: 1}, {Time: 65, MemoryKiB: 64, Threads: 1},
		{Time: 1, MemoryKiB: 64, Threads: 0}, {Time: 1, MemoryKiB: 31, Threads: 4}, {Time: 1, MemoryKiB: 4<<20 + 1, Threads: 1}} {
		if err := k.Validate(); err == nil {
			t.Errorf("%v accepted", k)
		}
		if _, err := Derive([]byte("pw"), Params{Bucket: "b", Salt: make([]byte, 16), KDF: k}); err == nil {
			t.Errorf("Derive with %v succeeded", k)
		}
	}
	if _, err := Derive([]byte("pw"), Params{Bucket: "b", Salt: make([]byte, 4), KDF: testKDF}); err == nil {
		t.Error("4-byte salt accepted")
	}
	if _, err := Derive([]byte("pw"), Params{Salt: make([]byte, 16), KDF: testKDF}); err == nil {
		t.Error("no bucket accepted")
	}
	s1, _ := NewSalt()
	s2, _ := NewSalt()
	if len(s1) != SaltSize || bytes.Equal(s1, s2) {
		t.Error("salts are not random")
	}
}

func BenchmarkSeal(b *testing.B) {
	c := derive(b, "pw", testParams())
	pt := make([]byte, 256<<10)
	dst := make([]byte, 0, len(pt)+Overhead)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = c.Seal(dst, pt, 1, "deflate")
	}
}

func BenchmarkOpen(b *testing.B) {
	c := derive(b, "pw", testParams())
	pt := make([]byte, 256<<10)
	sealed, _ := c.Seal(nil, pt, 1, "deflate")
	dst := make([]byte, 0, len(pt))
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open(dst, sealed, 1, "deflate"); err != nil {
			b.Fatal(err)
		}
	}
}
