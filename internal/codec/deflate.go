package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/zlib"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// deflateLayer is s3backer's "deflate": the zlib format (RFC 1950 header,
// deflate stream, Adler-32), as zlib's compress2 writes it and uncompress
// reads it. Raw deflate and gzip are not accepted, as in s3backer.
type deflateLayer struct {
	level   int       // zlib level: -1 (default) or 0 to 9
	writers sync.Pool // *deflater at this level
}

func newDeflateLayer(level int) *deflateLayer {
	l := &deflateLayer{level: level}
	l.writers.New = func() any {
		zw, err := zlib.NewWriterLevel(nil, level)
		if err != nil {
			// Levels are checked before a layer is made.
			panic(fmt.Sprintf("codec: zlib level %d: %v", level, err))
		}
		return &deflater{zw: zw}
	}
	return l
}

func (*deflateLayer) token() string { return "deflate" }

// deflater is a reusable zlib writer and the sink it writes into: Reset
// keeps the compressor's large tables, so a block costs no allocation.
type deflater struct {
	zw  *zlib.Writer
	out appendWriter
}

// appendWriter appends to a byte slice (the caller's scratch buffer).
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (l *deflateLayer) encode(block uint64, dst, src []byte, meta *backend.Meta) ([]byte, error) {
	d := l.writers.Get().(*deflater)
	defer l.writers.Put(d)
	d.out.b = dst
	defer func() { d.out.b = nil }() // do not keep the caller's buffer alive
	d.zw.Reset(&d.out)
	if _, err := d.zw.Write(src); err != nil {
		return nil, err
	}
	if err := d.zw.Close(); err != nil {
		return nil, err
	}
	return d.out.b, nil
}

// inflater is a reusable zlib reader over a reusable source.
type inflater struct {
	src bytes.Reader
	zr  io.ReadCloser // nil until the first stream: zlib.NewReader needs one
	one [1]byte
}

// inflaters are shared by every store: decoding does not depend on the
// level, and a block may be deflated whatever --compress says.
var inflaters = sync.Pool{New: func() any { return new(inflater) }}

var errOversize = errors.New("decompresses to more than a block")

func (l *deflateLayer) decode(block uint64, dst, src []byte, meta backend.Meta, limit int) ([]byte, error) {
	f := inflaters.Get().(*inflater)
	defer inflaters.Put(f)
	f.src.Reset(src)
	defer f.src.Reset(nil)
	if f.zr == nil {
		zr, err := zlib.NewReader(&f.src)
		if err != nil {
			return nil, fmt.Errorf("not a zlib stream: %w", err)
		}
		f.zr = zr
	} else if err := f.zr.(zlib.Resetter).Reset(&f.src, nil); err != nil {
		return nil, fmt.Errorf("not a zlib stream: %w", err)
	}
	start := len(dst)
	dst = slices.Grow(dst, limit)
	out := dst[start : start+limit]
	n, stalls := 0, 0
	for {
		if stalls > 100 { // a reader that neither reads nor fails
			return nil, errors.New("zlib: no progress")
		}
		if n == len(out) {
			// Full: the stream must end here. Reading on to its end also
			// checks the Adler-32.
			m, err := f.zr.Read(f.one[:])
			switch {
			case m > 0:
				return nil, fmt.Errorf("%w (%d bytes)", errOversize, limit)
			case err == io.EOF:
				return dst[:start+n], nil
			case err != nil:
				return nil, fmt.Errorf("zlib: %w", err)
			}
			stalls++
			continue
		}
		m, err := f.zr.Read(out[n:])
		n += m
		if m == 0 {
			stalls++
		}
		switch {
		case err == io.EOF:
			return dst[:start+n], nil
		case err != nil:
			return nil, fmt.Errorf("zlib: %w", err)
		}
	}
}
