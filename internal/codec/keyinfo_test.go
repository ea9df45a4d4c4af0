package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
)

const keyInfoKey = "disk1/" + KeyInfoName

// openErr is Open's error for a GCM store on b, mutated.
func openErr(b backend.Backend, mutate func(*Options)) error {
	o := Options{Bucket: "mybucket", Prefix: "disk1/", HashPrefix: true, BlockSize: 4096, NumBlocks: 256,
		Encrypt: aead.Name, Compress: "deflate", Password: []byte("pw"), KDF: testKDF}
	if mutate != nil {
		mutate(&o)
	}
	_, err := Open(context.Background(), b, o)
	return err
}

// gcmDisk is a bucket holding a GCM disk under disk1/ with block 9
// written.
func gcmDisk(t *testing.T) *mem.Backend {
	t.Helper()
	b := mem.New()
	if err := gcmStore(t, b, nil).WriteBlock(context.Background(), 9, mixed(4096)); err != nil {
		t.Fatal(err)
	}
	return b
}

func wantErr(t *testing.T, err, target error, words ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%v, want %v", err, target)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// The key info is stored before the disk's first block, not at Open: a
// disk opened and never written (or written only with zeros) is left as
// it was.
func TestKeyInfoStoredWithFirstBlock(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	s := gcmStore(t, b, nil)
	if err := s.WriteBlock(ctx, 3, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if keys := b.Keys(); len(keys) != 0 {
		t.Fatalf("opened and zeroed, the bucket holds %q", keys)
	}
	puts := b.Counts().Puts
	for n := uint64(1); n <= 3; n++ {
		if err := s.WriteBlock(ctx, n, mixed(4096)); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Counts().Puts - puts; got != 4 {
		t.Errorf("3 blocks written with %d PUTs, want 4 (one for the key info)", got)
	}
	body, info := getObject(t, b, keyInfoKey)
	if info.ContentType != "application/json" {
		t.Errorf("Content-Type %q", info.ContentType)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("key info is not JSON: %v\n%s", err, body)
	}
	kdf, _ := m["kdf"].(map[string]any)
	if m["format"] != "s3backer-go key info" || m["version"] != 1.0 || m["mode"] != "AES-256-GCM" ||
		m["bucket"] != "mybucket" || m["prefix"] != "disk1/" || kdf["name"] != "argon2id" ||
		kdf["time"] != 1.0 || kdf["memoryKiB"] != 64.0 || kdf["threads"] != 1.0 || len(kdf["salt"].(string)) != 24 ||
		len(m["check"].(string)) != 44 {
		t.Errorf("key info:\n%s", body)
	}
	// Another start reads it and reads the blocks.
	buf := make([]byte, 4096)
	if err := gcmStore(t, b, nil).ReadBlock(ctx, 2, buf); err != nil {
		t.Fatal(err)
	}
	// The default KDF is RFC 9106's second recommendation.
	if kdfFor(Options{}) != aead.DefaultKDF || aead.DefaultKDF != (aead.KDF{Time: 3, MemoryKiB: 64 << 10, Threads: 4}) {
		t.Errorf("default KDF %v", kdfFor(Options{}))
	}
	if kdfFor(Options{KDF: testKDF}) != testKDF {
		t.Error("KDF option ignored")
	}
}

// Two first starts of one new disk: the first to write stores its key
// info; the other's writes are refused rather than made under a salt
// nobody recorded.
func TestKeyInfoRace(t *testing.T) {
	ctx := context.Background()
	b := mem.New()
	s1, s2 := gcmStore(t, b, nil), gcmStore(t, b, nil)
	if err := s1.WriteBlock(ctx, 1, mixed(4096)); err != nil {
		t.Fatal(err)
	}
	err := s2.WriteBlock(ctx, 2, mixed(4096))
	if err == nil || !strings.Contains(err.Error(), "write block 2") || !strings.Contains(err.Error(), "appeared after this process opened the disk") {
		t.Fatalf("second first start wrote: %v", err)
	}
	if _, err := getObjectErr(b, s2.Key(2)); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("the refused block was stored: %v", err)
	}
	// A retry of the same key info (a PUT whose answer was lost) is fine.
	s3 := gcmStore(t, mem.New(), nil)
	body, _ := getObject(t, b, keyInfoKey)
	s3.newKey.body = body
	put(t, s3.b, keyInfoKey, body, backend.Meta{})
	if err := s3.WriteBlock(ctx, 1, mixed(4096)); err != nil {
		t.Fatal(err)
	}
}

func getObjectErr(b *mem.Backend, key string) ([]byte, error) {
	buf := make([]byte, 1<<20)
	n, _, err := b.Get(context.Background(), key, buf, backend.GetOptions{})
	return buf[:n], err
}

func TestOpenWrongPassword(t *testing.T) {
	b := gcmDisk(t)
	gets := b.Counts().Gets
	err := openErr(b, func(o *Options) { o.Password = []byte("pW") })
	wantErr(t, err, ErrWrongPassword, "cannot unlock mybucket/disk1/ with this password", keyInfoKey)
	if n := b.Counts().Gets - gets; n != 1 {
		t.Errorf("refusing a password took %d GETs, want 1 (no block read)", n)
	}
	if err := openErr(b, func(o *Options) { o.Password = nil }); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("no password: %v", err)
	}
	if err := openErr(b, nil); err != nil {
		t.Fatalf("right password: %v", err)
	}
}

// A disk is opened in its own mode or refused at start, both ways.
func TestOpenWrongMode(t *testing.T) {
	ctx := context.Background()
	gcm := gcmDisk(t)
	for _, c := range []struct {
		name  string
		b     *mem.Backend
		opt   func(*Options)
		want  error
		words []string
	}{
		{"GCM disk, no --encrypt", gcm, func(o *Options) { o.Encrypt, o.Password = "", nil },
			ErrWrongMode, []string{"mybucket/disk1/ is an AES-256-GCM disk", "--encrypt was not given", "--encrypt=AES-256-GCM"}},
		{"GCM disk, CBC", gcm, func(o *Options) { o.Encrypt = "AES-128-CBC" },
			ErrWrongMode, []string{"is an AES-256-GCM disk", "--encrypt=AES-128-CBC was given"}},
		{"CBC disk, GCM", cbcDisk(t), nil,
			ErrWrongMode, []string{"blocks encrypted by s3backer's AES-128-CBC (block 9)", "--encrypt=AES-128-CBC"}},
		{"plain disk, GCM", plainDisk(t), nil,
			ErrWrongMode, []string{"unencrypted blocks (block 0", "without --encrypt"}},
		{"GCM blocks without key info", withoutKeyInfo(t, gcmDisk(t)), nil,
			ErrBadKeyInfo, []string{"AES-256-GCM blocks (block 9) but no key info", "restore it"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Bucket: "mybucket", Prefix: "disk1/", HashPrefix: true, BlockSize: 4096, NumBlocks: 256,
				Encrypt: aead.Name, Compress: "deflate", Password: []byte("pw"), KDF: testKDF}
			if c.opt != nil {
				c.opt(&o)
			}
			_, err := Open(ctx, c.b, o)
			wantErr(t, err, c.want, c.words...)
		})
	}
	// Plain and CBC disks open as before, at the cost of one GET.
	for name, b := range map[string]*mem.Backend{"plain": plainDisk(t), "CBC": cbcDisk(t)} {
		before := b.Counts()
		o := Options{Bucket: "mybucket", Prefix: "disk1/", HashPrefix: true, BlockSize: 4096, NumBlocks: 256}
		if name == "CBC" {
			o.Encrypt, o.Password = "AES-128-CBC", []byte("pw")
		}
		if _, err := Open(ctx, b, o); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if after := b.Counts(); after.Gets-before.Gets != 1 || after.Heads != before.Heads || after.Lists != before.Lists {
			t.Errorf("%s: Open cost %+v, want one GET", name, after)
		}
	}
}

func cbcDisk(t *testing.T) *mem.Backend {
	b := mem.New()
	if err := encStore(t, b, nil).WriteBlock(context.Background(), 9, mixed(4096)); err != nil {
		t.Fatal(err)
	}
	return b
}

func plainDisk(t *testing.T) *mem.Backend {
	b := mem.New()
	s := newStore(t, b, Options{Prefix: "disk1/", HashPrefix: true, BlockSize: 4096, NumBlocks: 256})
	if err := s.WriteBlock(context.Background(), 0, mixed(4096)); err != nil {
		t.Fatal(err)
	}
	return b
}

func withoutKeyInfo(t *testing.T, b *mem.Backend) *mem.Backend {
	if err := b.Delete(context.Background(), keyInfoKey); err != nil {
		t.Fatal(err)
	}
	return b
}

// A key info that cannot be used is a clear error at start, never a new
// salt: with it, every block would be unreadable.
func TestOpenBadKeyInfo(t *testing.T) {
	edit := func(f func(m map[string]any)) func([]byte) []byte {
		return func(body []byte) []byte {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				panic(err)
			}
			f(m)
			out, _ := json.Marshal(m)
			return out
		}
	}
	kdf := func(k string, v any) func([]byte) []byte {
		return edit(func(m map[string]any) { m["kdf"].(map[string]any)[k] = v })
	}
	for _, c := range []struct {
		name   string
		change func([]byte) []byte
		want   error
		words  []string
	}{
		{"not JSON", func([]byte) []byte { return []byte("garbage\n") }, ErrBadKeyInfo, []string{"damaged", "not valid key info JSON", "restore it"}},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, ErrBadKeyInfo, []string{"damaged", "not valid key info JSON"}},
		{"empty", func([]byte) []byte { return nil }, ErrBadKeyInfo, []string{"damaged"}},
		{"trailing data", func(b []byte) []byte { return append(b, "{}"...) }, ErrBadKeyInfo, []string{"data after the object"}},
		{"unknown field", edit(func(m map[string]any) { m["cipher"] = "x" }), ErrBadKeyInfo, []string{"unknown field"}},
		{"other format", edit(func(m map[string]any) { m["format"] = "x" }), ErrBadKeyInfo, []string{`format is "x"`}},
		{"newer version", edit(func(m map[string]any) { m["version"] = 2 }), ErrBadKeyInfo, []string{"format version 2", "reads version 1"}},
		{"other mode", edit(func(m map[string]any) { m["mode"] = "CHACHA20-POLY1305" }), ErrBadKeyInfo, []string{`mode "CHACHA20-POLY1305"`}},
		{"other KDF", kdf("name", "scrypt"), ErrBadKeyInfo, []string{`key derivation "scrypt"`}},
		{"huge memory", kdf("memoryKiB", 1<<30), ErrBadKeyInfo, []string{"argon2id memory"}},
		{"zero time", kdf("time", 0), ErrBadKeyInfo, []string{"argon2id time 0"}},
		{"short salt", kdf("salt", "AAAA"), ErrBadKeyInfo, []string{"salt of 3 bytes"}},
		{"short check", edit(func(m map[string]any) { m["check"] = "AAAA" }), ErrBadKeyInfo, []string{"check value of 3 bytes"}},
		// Edits that parse: the check value catches them.
		{"salt changed", kdf("salt", "AAAAAAAAAAAAAAAAAAAAAA=="), ErrWrongPassword, []string{"wrong password, or altered key info"}},
		{"cheaper KDF", kdf("time", 2), ErrWrongPassword, []string{"altered key info"}},
		{"check changed", edit(func(m map[string]any) { m["check"] = strings.Repeat("A", 43) + "=" }), ErrWrongPassword, []string{"wrong password"}},
		{"too large", func([]byte) []byte { return bytes.Repeat([]byte(" "), keyInfoMax+1) }, ErrBadKeyInfo, []string{"larger than 4096 bytes"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := gcmDisk(t)
			body, info := getObject(t, b, keyInfoKey)
			put(t, b, keyInfoKey, c.change(body), info.Meta)
			wantErr(t, openErr(b, nil), c.want, c.words...)
			// Opened in another mode, it is still an encrypted disk.
			err := openErr(b, func(o *Options) { o.Encrypt = "" })
			if !errors.Is(err, ErrWrongMode) && !errors.Is(err, ErrBadKeyInfo) {
				t.Errorf("opened without --encrypt: %v", err)
			}
		})
	}
}

// A GCM disk copied with its key info to another bucket or prefix is
// refused at start: its blocks are bound to where they were written.
func TestOpenMovedDisk(t *testing.T) {
	b := gcmDisk(t)
	body, info := getObject(t, b, keyInfoKey)
	put(t, b, "disk2/"+KeyInfoName, body, info.Meta)
	wantErr(t, openErr(b, func(o *Options) { o.Prefix = "disk2/" }), ErrBadKeyInfo,
		"made for the disk at mybucket/disk1/, not mybucket/disk2/", "bound to its bucket and prefix")
	wantErr(t, openErr(b, func(o *Options) { o.Bucket = "other" }), ErrBadKeyInfo, "not other/disk1/")
	// With the key info's bucket or prefix edited to match, the check
	// value no longer does.
	fixed := bytes.Replace(body, []byte(`"disk1/"`), []byte(`"disk2/"`), 1)
	put(t, b, "disk2/"+KeyInfoName, fixed, info.Meta)
	wantErr(t, openErr(b, func(o *Options) { o.Prefix = "disk2/" }), ErrWrongPassword, "altered key info")
}

// New cannot open a GCM disk (no key info without a request).
func TestNewRefusesGCM(t *testing.T) {
	_, err := New(mem.New(), Options{Bucket: "b", BlockSize: 4096, NumBlocks: 1, Encrypt: aead.Name, Password: []byte("pw")})
	if err == nil || !strings.Contains(err.Error(), "codec.Open") {
		t.Fatalf("New with AES-256-GCM: %v", err)
	}
	if _, err := Open(context.Background(), nil, Options{}); err == nil {
		t.Fatal("Open without a backend succeeded")
	}
}
