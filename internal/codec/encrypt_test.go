package codec

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
	"github.com/s3backer-go/s3backer/internal/blockcrypt"
	"github.com/s3backer-go/s3backer/internal/testenv/lockedbuf"
)

// encStore is a store of 64 blocks of 4 KiB under mybucket/disk1/ with the
// block hash prefix, encrypting with password pw: the setting of the C
// s3backer's known answers (§15).
func encStore(t *testing.T, b backend.Backend, mutate func(*Options)) *Store {
	t.Helper()
	o := Options{Bucket: "mybucket", Prefix: "disk1/", HashPrefix: true, BlockSize: 4096, NumBlocks: 256,
		VerifyETag: true, Encrypt: "AES-128-CBC", Password: []byte("pw")}
	if mutate != nil {
		mutate(&o)
	}
	return newStore(t, b, o)
}

// Block 0 exactly as the C s3backer stored it (§15).
func plantKnownBlock(t *testing.T, b backend.Backend) {
	t.Helper()
	put(t, b, "disk1/c448b72c-00000000",
		unhexT(t, "b70b1a8b2a7c7d5fb073f7395094b351517ecd341658e521a86c495f56c83ca4"),
		backend.Meta{ContentType: blockContentType, ContentEncoding: "deflate, encrypt-AES-128-CBC", User: map[string]string{
			"s3backer-hmac": `"efae8ca3ea56d7137e6e54036d882b14530ad3b1"`, "s3backer-blocksize": "4096", "s3backer-filesize": "1048576"}})
}

func TestKnownEncryptedBlock(t *testing.T) {
	b := mem.New()
	plantKnownBlock(t, b)
	if _, info := getObject(t, b, "disk1/c448b72c-00000000"); info.ETag != "ddf2716b44801eb4e36a201029c73174" {
		t.Errorf("ETag %s", info.ETag)
	}
	s := encStore(t, b, nil)
	buf := make([]byte, 4096)
	if err := s.ReadBlock(context.Background(), 0, buf); err != nil || !bytes.Equal(buf, fill(4096, 'B')) {
		t.Fatalf("C's encrypted block 0: %v", err)
	}
	// What we write is readable by the same rules: header, HMAC, padding.
	data := fill(4096, 'B')
	if err := s.WriteBlock(context.Background(), 0, data); err != nil {
		t.Fatal(err)
	}
	body, info := getObject(t, b, "disk1/c448b72c-00000000")
	if info.ContentEncoding != "deflate, encrypt-AES-128-CBC" || info.ContentType != blockContentType ||
		info.User["s3backer-blocksize"] != "4096" || info.User["s3backer-filesize"] != "1048576" {
		t.Errorf("headers %+v", info.Meta)
	}
	if !regexp.MustCompile(`^"[0-9a-f]{40}"$`).MatchString(info.User["s3backer-hmac"]) {
		t.Errorf("HMAC header %q", info.User["s3backer-hmac"])
	}
	c, _ := blockcrypt.New("AES-128-CBC", []byte("pw"), blockcrypt.Salt("mybucket", "disk1/"), 0)
	mac := c.MAC(0, body)
	if info.User["s3backer-hmac"] != `"`+hex.EncodeToString(mac[:])+`"` {
		t.Error("HMAC header is not the HMAC of the body")
	}
	pt, err := c.Open(nil, body, 0, mac[:])
	if err != nil || pt[0] != 0x78 {
		t.Fatalf("body does not decrypt to a zlib stream: %v", err)
	}
	if sum := md5.Sum(body); info.ETag != hex.EncodeToString(sum[:]) {
		t.Error("ETag is not the MD5 of the encrypted body")
	}
}

// Other writers' spellings: a lower-case cipher (s3backer 1.5.x writes it
// as typed), an unquoted HMAC, and encryption without compression (which
// s3backer reads though it never writes it).
func TestEncryptedVariantsRead(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	s := encStore(t, b, nil)
	c, _ := blockcrypt.New("AES-128-CBC", []byte("pw"), blockcrypt.Salt("mybucket", "disk1/"), 0)
	data := mixed(4096)
	ct, mac, _ := c.Seal(nil, data, 3)
	put(t, b, s.Key(3), ct, backend.Meta{ContentEncoding: "encrypt-aes-128-cbc", User: map[string]string{metaHMAC: strings.ToUpper(hex.EncodeToString(mac[:]))}})
	buf := make([]byte, 4096)
	if err := s.ReadBlock(ctx, 3, buf); err != nil || !bytes.Equal(buf, data) {
		t.Fatalf("encrypted, uncompressed block: %v", err)
	}
}

// tamperings are what the read of an encrypted block must refuse: each
// changes the object of block 5 (or the store reading it) and names a
// word the error must contain.
func TestEncryptedTamperingIsEIO(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*Store, *mem.Backend) {
		b := mem.New()
		s := encStore(t, b, nil)
		for n := uint64(4); n <= 6; n++ {
			if err := s.WriteBlock(ctx, n, mixed(4096)); err != nil {
				t.Fatal(err)
			}
		}
		return s, b
	}
	edit := func(b *mem.Backend, key string, f func(body []byte, m *backend.Meta) []byte) {
		body, info := getObject(t, b, key)
		body = f(bytes.Clone(body), &info.Meta)
		put(t, b, key, body, info.Meta)
	}
	for _, c := range []struct {
		name   string
		change func(s *Store, b *mem.Backend)
		reader func(*Options) // how the reading store differs
		want   error
		word   string
	}{
		{"body byte", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte { body[10] ^= 1; return body })
		}, nil, ErrAuth, "HMAC does not match"},
		{"body truncated", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte { return body[:len(body)-16] })
		}, nil, ErrAuth, "HMAC does not match"},
		{"HMAC header", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte {
				h := []byte(m.User[metaHMAC])
				h[5] = "10"[min(1, int(h[5]-'0'))] // another hex digit
				m.User[metaHMAC] = string(h)
				return body
			})
		}, nil, ErrAuth, "HMAC does not match"},
		{"HMAC header malformed", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte { m.User[metaHMAC] = `"xyz"`; return body })
		}, nil, ErrAuth, "malformed HMAC"},
		{"HMAC header missing", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte { delete(m.User, metaHMAC); return body })
		}, nil, ErrAuth, "no HMAC"},
		{"Content-Encoding other compression", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte {
				m.ContentEncoding = "zstd, encrypt-AES-128-CBC"
				return body
			})
		}, nil, nil, "zstd"},
		{"Content-Encoding without compression", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte { m.ContentEncoding = "encrypt-AES-128-CBC"; return body })
		}, nil, nil, "block size is 4096"},
		{"Content-Encoding without encryption", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte { m.ContentEncoding = "deflate"; return body })
		}, nil, ErrEncryptionMismatch, "not encrypted"},
		{"Content-Encoding other cipher", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte {
				m.ContentEncoding = "deflate, encrypt-AES-256-CBC"
				return body
			})
		}, nil, ErrEncryptionMismatch, "AES-256-CBC"},
		{"Content-Encoding removed", func(s *Store, b *mem.Backend) {
			edit(b, s.Key(5), func(body []byte, m *backend.Meta) []byte { m.ContentEncoding = ""; return body })
		}, nil, ErrEncryptionMismatch, "not encrypted"},
		{"objects of two blocks swapped", func(s *Store, b *mem.Backend) {
			b4, i4 := getObject(t, b, s.Key(4))
			b5, i5 := getObject(t, b, s.Key(5))
			put(t, b, s.Key(4), b5, i5.Meta)
			put(t, b, s.Key(5), b4, i4.Meta)
		}, nil, ErrAuth, "copied from another block"},
		{"plain block", func(s *Store, b *mem.Backend) {
			put(t, b, s.Key(5), mixed(4096), backend.Meta{ContentType: blockContentType})
		}, nil, ErrEncryptionMismatch, "not encrypted"},
		{"wrong password", nil, func(o *Options) { o.Password = []byte("pW") }, ErrAuth, "wrong password"},
		{"empty password", nil, func(o *Options) { o.Password = nil }, ErrAuth, "wrong password"},
		{"wrong key length", nil, func(o *Options) { o.KeyLength = 20 }, ErrAuth, "--keyLength"},
		{"other prefix (salt)", nil, func(o *Options) { o.Bucket = "mybucket2" }, ErrAuth, "bucket or prefix"},
		{"other cipher", nil, func(o *Options) { o.Encrypt = "AES-256-CBC" }, ErrEncryptionMismatch, "--encrypt=AES-128-CBC?"},
		{"no --encrypt", nil, func(o *Options) { o.Encrypt, o.Compress, o.CompressLevel = "", "deflate", -1 }, ErrEncryptionMismatch, "--encrypt was not given"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, b := setup(t)
			if c.change != nil {
				c.change(s, b)
			}
			var logs lockedbuf.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			r := encStore(t, b, func(o *Options) {
				o.Logger = log
				if c.reader != nil {
					c.reader(o)
				}
			})
			err := readErr(t, r, 5)
			wantEIO(t, err, "block 5", r.Key(5), c.word)
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("%v, want %v", err, c.want)
			}
			if l := logs.String(); !strings.Contains(l, "refusing to read block") || !strings.Contains(l, "block=5") {
				t.Errorf("no log line naming block 5: %q", l)
			}
			// Block 6 was left alone: it still reads with the right key.
			if c.reader == nil {
				if err := readErr(t, r, 6); err != nil {
					t.Errorf("untouched block 6: %v", err)
				}
			}
		})
	}
}

func TestParseMAC(t *testing.T) {
	const h = "efae8ca3ea56d7137e6e54036d882b14530ad3b1"
	for in, ok := range map[string]bool{
		`"` + h + `"`: true, h: true, strings.ToUpper(h): true,
		`"` + h: false, h[:39]: false, `"` + h[:39] + `g"`: false, "": false, `""`: false,
	} {
		mac, got := parseMAC(in)
		if got != ok || (ok && hex.EncodeToString(mac[:]) != h) {
			t.Errorf("parseMAC(%q) = %x, %v", in, mac, got)
		}
	}
	var mac [20]byte
	copy(mac[:], unhexT(t, h))
	if formatMAC(mac) != `"`+h+`"` {
		t.Errorf("formatMAC = %s", formatMAC(mac))
	}
}
