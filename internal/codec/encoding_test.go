package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// xorLayer stands in for compression and encryption to exercise the chain:
// it XORs with a key, appends a trailer byte (so sizes change, as with
// compression) and records itself in metadata (as encryption's HMAC does).
type xorLayer struct {
	name string
	key  byte
}

func (l xorLayer) token() string { return l.name }

func (l xorLayer) encode(block uint64, dst, src []byte, meta *backend.Meta) ([]byte, error) {
	for _, c := range src {
		dst = append(dst, c^l.key)
	}
	if meta.User == nil {
		meta.User = map[string]string{}
	}
	meta.User["test-"+l.name] = fmt.Sprint(block)
	return append(dst, l.key), nil
}

func (l xorLayer) decode(block uint64, dst, src []byte, meta backend.Meta, limit int) ([]byte, error) {
	if meta.User["test-"+l.name] != fmt.Sprint(block) {
		return nil, errors.New("signature missing")
	}
	if len(src) == 0 || src[len(src)-1] != l.key || len(src)-1 > limit {
		return nil, errors.New("bad trailer")
	}
	for _, c := range src[:len(src)-1] {
		dst = append(dst, c^l.key)
	}
	return dst, nil
}

func TestChainSeam(t *testing.T) {
	ctx := context.Background()
	s, b := memStore(t, nil)
	a, z := xorLayer{"xa", 0x0f}, xorLayer{"xz", 0xf0}
	s.chain = chain{
		write: []layer{a, z},
		resolve: func(tok string) (layer, error) {
			for _, l := range []layer{a, z} {
				if strings.EqualFold(tok, l.token()) {
					return l, nil
				}
			}
			return nil, unknownEncoding(tok)
		},
	}
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i)
	}
	data[0] = 1
	for _, n := range []uint64{0, 3} {
		if err := s.WriteBlock(ctx, n, data); err != nil {
			t.Fatal(err)
		}
		body, info := getObject(t, b, s.Key(n))
		if info.ContentEncoding != "xa, xz" || len(body) != 4098 {
			t.Fatalf("block %d: Content-Encoding %q, %d bytes", n, info.ContentEncoding, len(body))
		}
		if n == 0 && info.User["s3backer-blocksize"] != "4096" {
			t.Fatalf("block 0 lost its size metadata: %v", info.User)
		}
		buf := make([]byte, 4096)
		if err := s.ReadBlock(ctx, n, buf); err != nil || !bytes.Equal(buf, data) {
			t.Fatalf("block %d round trip: %v", n, err)
		}
	}
	// Layers are undone last first: swapping the order fails.
	body, info := getObject(t, b, s.Key(3))
	info.Meta.ContentEncoding = "xz, xa"
	put(t, b, s.Key(3), body, info.Meta)
	wantEIO(t, readErr(t, s, 3), "bad trailer")
	// A layer the resolver does not know is still an error.
	info.Meta.ContentEncoding = "xa, gzip"
	put(t, b, s.Key(3), body, info.Meta)
	wantEIO(t, readErr(t, s, 3), `"gzip"`)
}
