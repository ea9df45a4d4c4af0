package blockcrypt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// Known answers from the C s3backer (s3backer-format-detail.md §15).

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSalt(t *testing.T) {
	if got := string(Salt("mybucket", "disk1/")); got != "mybucket/disk1/" {
		t.Errorf("salt %q", got)
	}
	if got := string(Salt("bucket", "")); got != "bucket/" {
		t.Errorf("salt %q", got)
	}
}

func TestKnownKeys(t *testing.T) {
	for _, v := range []struct {
		cipher, password, bucket, prefix string
		key, ivKey                       string
		ivs                              map[uint64]string
	}{
		{"AES-128-CBC", "pw", "mybucket", "disk1/",
			"eab7f48fc7ca2d0c204b1023905dc806", "a06c6775371511696f26e28bc5675f6b",
			map[uint64]string{0: "3912a363e2dfe80b18e901d8af91f7b0", 1: "9c7cb7c59aaa7f30c7090135270fdee9", 5: "e2856c5bf359ecd4566891de05d069be"}},
		{"AES-128-CBC", "password", "bucket", "",
			"3c855e59072982665ab95ffb36257656", "9d328908702d5644ecc7e1a51f77777e",
			map[uint64]string{0: "9615a7d848381b5bd3caa81873d3f416"}},
		{"AES-256-CBC", "password", "bucket", "",
			"3c855e59072982665ab95ffb362576561cd8956e135b05d5d202bede3aa870bd",
			"2ab193d48301829097705833f9a6ea55dd531c043a4f3ce0197b5bf8c115232d",
			map[uint64]string{0: "be5a95d0c2e2a8bac857fff7d2ec3768"}},
	} {
		salt := Salt(v.bucket, v.prefix)
		key, ivKey, err := DeriveKeys([]byte(v.password), salt, len(v.key)/2)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(key) != v.key || hex.EncodeToString(ivKey) != v.ivKey {
			t.Errorf("%s %q %q: key %x ivkey %x", v.cipher, v.password, salt, key, ivKey)
		}
		c, err := New(v.cipher, []byte(v.password), salt, 0)
		if err != nil {
			t.Fatal(err)
		}
		for n, want := range v.ivs {
			if iv := c.IV(n); hex.EncodeToString(iv[:]) != want {
				t.Errorf("%s: IV(%d) = %x, want %s", v.cipher, n, iv, want)
			}
		}
	}
}

// Block 0 of mybucket/disk1/, 4096 bytes of 'B', as the C s3backer stored
// it: the zlib payload encrypts to this ciphertext and HMAC.
func TestKnownBlock(t *testing.T) {
	payload := unhex(t, "789cedc1010d000000c2a06eef1fca1e0e28000000e0dd000f3c203d")
	wantCT := unhex(t, "b70b1a8b2a7c7d5fb073f7395094b351517ecd341658e521a86c495f56c83ca4")
	wantMAC := unhex(t, "efae8ca3ea56d7137e6e54036d882b14530ad3b1")
	c, err := New("aes-128-cbc", []byte("pw"), Salt("mybucket", "disk1/"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "AES-128-CBC" {
		t.Errorf("name %q", c.Name())
	}
	ct, mac, err := c.Seal(nil, payload, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ct, wantCT) || !bytes.Equal(mac[:], wantMAC) {
		t.Fatalf("Seal: %x mac %x", ct, mac)
	}
	if m := c.MAC(0, wantCT); !bytes.Equal(m[:], wantMAC) {
		t.Errorf("MAC %x", m)
	}
	pt, err := c.Open([]byte("x"), wantCT, 0, wantMAC)
	if err != nil || !bytes.Equal(pt, append([]byte("x"), payload...)) {
		t.Fatalf("Open: %x, %v", pt, err)
	}
	// The same object under another block number, password or cipher
	// fails authentication.
	if _, err := c.Open(nil, wantCT, 1, wantMAC); !errors.Is(err, ErrAuth) {
		t.Errorf("block 1: %v", err)
	}
	other, _ := New("AES-128-CBC", []byte("pW"), Salt("mybucket", "disk1/"), 0)
	if _, err := other.Open(nil, wantCT, 0, wantMAC); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong password: %v", err)
	}
	moved, _ := New("AES-128-CBC", []byte("pw"), Salt("mybucket", "disk2/"), 0)
	if _, err := moved.Open(nil, wantCT, 0, wantMAC); !errors.Is(err, ErrAuth) {
		t.Errorf("other prefix: %v", err)
	}
	aes256, _ := New("AES-256-CBC", []byte("pw"), Salt("mybucket", "disk1/"), 0)
	if _, err := aes256.Open(nil, wantCT, 0, wantMAC); !errors.Is(err, ErrAuth) {
		t.Errorf("other cipher: %v", err)
	}
}

// --keyLength longer than the cipher's: the cipher uses the first bytes,
// the IV key and HMAC all of them (verified with the C s3backer at 48).
func TestKeyLength(t *testing.T) {
	salt := Salt("bucket", "")
	c32, _ := New("AES-256-CBC", []byte("password"), salt, 0)
	c48, err := New("AES-256-CBC", []byte("password"), salt, 48)
	if err != nil {
		t.Fatal(err)
	}
	key48, ivKey48, _ := DeriveKeys([]byte("password"), salt, 48)
	key32, _, _ := DeriveKeys([]byte("password"), salt, 32)
	if !bytes.Equal(key48[:32], key32) {
		t.Fatal("PBKDF2 prefix property does not hold")
	}
	ref, _ := newFromKeys("AES-256-CBC", key48, ivKey48)
	if c48.IV(7) != ref.IV(7) || c48.IV(7) == c32.IV(7) {
		t.Error("IV with --keyLength=48 does not come from the 48-byte IV key")
	}
	ct, mac, _ := c48.Seal(nil, []byte("hello"), 7)
	if _, err := c32.Open(nil, ct, 7, mac[:]); !errors.Is(err, ErrAuth) {
		t.Errorf("48-byte key read with a 32-byte one: %v", err)
	}
	for _, bad := range []int{-1, 8, 31, 65} {
		if _, err := New("AES-256-CBC", []byte("pw"), salt, bad); err == nil {
			t.Errorf("key length %d accepted", bad)
		}
	}
	if _, err := New("AES-128-CBC", []byte("pw"), salt, 64); err != nil {
		t.Errorf("key length 64: %v", err)
	}
	if _, err := New("DES-CBC", []byte("pw"), salt, 0); err == nil {
		t.Error("DES accepted")
	}
}
