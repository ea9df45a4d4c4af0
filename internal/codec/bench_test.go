package codec

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3backer-go/s3backer/internal/aead"
	"github.com/s3backer-go/s3backer/internal/backend/mem"
)

// benchEncodings: each algorithm at its fastest and default level, each
// CBC key size over the default compression, and AES-256-GCM alone and
// over each compression.
var benchEncodings = []Options{
	{},
	{Compress: "deflate", CompressLevel: 1},
	{Compress: "deflate", CompressLevel: -1},
	{Compress: "zstd", CompressLevel: 1},
	{Compress: "zstd", CompressLevel: 3},
	{Encrypt: "AES-128-CBC", Password: []byte("pw")},
	{Encrypt: "AES-256-CBC", Password: []byte("pw")},
	{Compress: "zstd", CompressLevel: 3, Encrypt: "AES-256-CBC", Password: []byte("pw")},
	{Encrypt: aead.Name, Password: []byte("pw")}, // no compression
	{Compress: "deflate", CompressLevel: -1, Encrypt: aead.Name, Password: []byte("pw")},
	{Compress: "zstd", CompressLevel: 3, Encrypt: aead.Name, Password: []byte("pw")},
}

// benchData is a random block, or a compressible one: text made of a
// small vocabulary (about 3:1 with deflate, like a filesystem's metadata
// and logs rather than its media).
func benchData(kind string, size int) []byte {
	b := make([]byte, size)
	if kind == "random" {
		_, _ = rand.Read(b)
		return b
	}
	words := strings.Fields("the of and a to in is you that it he was for on are as with his they I at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part")
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < size; {
		i += copy(b[i:], words[r.IntN(len(words))])
		i += copy(b[i:], " \n"[r.IntN(2):][:1])
	}
	return b
}

func benchStores(b *testing.B, f func(b *testing.B, s *Store, data []byte)) {
	for _, e := range benchEncodings {
		for _, size := range []int{256 << 10, 1 << 20} {
			o := Options{Prefix: "disk1/", BlockSize: size, NumBlocks: 8}
			withEncoding(&o, e)
			s := newStore(b, mem.New(), o)
			for _, kind := range []string{"random", "text"} {
				data := benchData(kind, size)
				b.Run(fmt.Sprintf("%s/%s/%dK", encodingName(e), kind, size>>10), func(b *testing.B) {
					b.SetBytes(int64(size))
					b.ReportAllocs()
					cpu := cpuTime()
					f(b, s, data)
					// MB/s per CPU second: what one core does, whatever else
					// the machine is running.
					if d := cpuTime() - cpu; d > 0 {
						b.ReportMetric(float64(size)*float64(b.N)/d.Seconds()/1e6, "MB/cpu-s")
					}
				})
			}
		}
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEncode is a block write's codec work (compress, encrypt, HMAC);
// MB/s are of block data, on one core.
func BenchmarkEncode(b *testing.B) {
	benchStores(b, func(b *testing.B, s *Store, data []byte) {
		var stored int
		for b.Loop() {
			sc := s.getScratch()
			body, _, err := s.encodeOnce(1, data, sc)
			if err != nil {
				b.Fatal(err)
			}
			stored = len(body)
			s.putScratch(sc)
		}
		b.ReportMetric(float64(stored)/float64(len(data)), "stored/block")
	})
}

// BenchmarkDecode is a block read's codec work (HMAC check, decrypt,
// decompress, size check), the body already in a buffer as the backend
// leaves it.
func BenchmarkDecode(b *testing.B) {
	benchStores(b, func(b *testing.B, s *Store, data []byte) {
		sc := s.getScratch()
		body, meta, err := s.encodeOnce(1, data, sc)
		if err != nil {
			b.Fatal(err)
		}
		stored := append([]byte(nil), body...)
		s.putScratch(sc)
		obj, buf := s.bufs.get(), make([]byte, len(data))
		for b.Loop() {
			*obj = append((*obj)[:0], stored...)
			if err := s.decode(1, *obj, meta, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
