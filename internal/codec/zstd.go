package codec

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// zstdLayer is s3backer's "zstd" (2.0.2 and later): one zstd frame, with
// the content size and without a checksum, as ZSTD_compress makes it.
// Reading takes any valid frames, as ZSTD_decompress does.
type zstdLayer struct {
	level zstd.EncoderLevel
}

// newZstdLayer maps a zstd level (0 = zstd's default, 3; negative = its
// fast levels) to the nearest of the four levels the Go encoder has.
func newZstdLayer(level int) *zstdLayer {
	if level == 0 {
		level = 3
	}
	return &zstdLayer{level: zstd.EncoderLevelFromZstd(level)}
}

func (*zstdLayer) token() string { return "zstd" }

// The encoders and the decoder are shared by every store: each holds one
// set of tables per CPU, handed out per call, so a block costs no
// allocation and concurrent blocks do not wait for each other.
var (
	zstdEncoders [zstd.SpeedBestCompression + 1]func() (*zstd.Encoder, error)
	zstdDecoder  = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0), // one per CPU, not 4
			zstd.WithDecodeAllCapLimit(true))
	})
)

func init() {
	for l := range zstdEncoders {
		level := zstd.EncoderLevel(l)
		zstdEncoders[l] = sync.OnceValues(func() (*zstd.Encoder, error) {
			return zstd.NewWriter(nil,
				zstd.WithEncoderLevel(level),
				zstd.WithEncoderCRC(false), // as ZSTD_compress: the ETag covers the body
				zstd.WithEncoderConcurrency(0))
		})
	}
}

func (l *zstdLayer) encode(block uint64, dst, src []byte, meta *backend.Meta) ([]byte, error) {
	e, err := zstdEncoders[l.level]()
	if err != nil {
		return nil, err
	}
	return e.EncodeAll(src, dst), nil
}

func (l *zstdLayer) decode(block uint64, dst, src []byte, meta backend.Meta, limit int) ([]byte, error) {
	d, err := zstdDecoder()
	if err != nil {
		return nil, err
	}
	// The cap limit makes the decoder refuse, rather than grow, output
	// past limit bytes.
	dst = slices.Grow(dst, limit)
	out, err := d.DecodeAll(src, dst[:len(dst):len(dst)+limit])
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return nil, fmt.Errorf("%w (%d bytes)", errOversize, limit)
	case err != nil:
		return nil, err // klauspost's errors start "zstd: "
	}
	return out, nil
}
