package codec

import (
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend/mem"
)

// Once pools are warm, a block costs no buffer, compressor or cipher
// allocation in the codec. A write's metadata is the exception: the Meta
// the layers fill in (it escapes through the layer interface) and, with
// CBC, the HMAC header's map and string: under 200 bytes a block. GCM's
// per-block key is the other (see below).
func TestSteadyStateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts under the race detector")
	}
	for _, e := range encodings {
		o := Options{Prefix: "disk1/", BlockSize: 256 << 10, NumBlocks: 8, VerifyETag: true}
		withEncoding(&o, e)
		s := newStore(t, mem.New(), o)
		data := mixed(o.BlockSize)
		sc := s.getScratch()
		body, meta, err := s.encodeOnce(3, data, sc)
		if err != nil {
			t.Fatal(err)
		}
		stored := s.bufs.get()
		*stored = append((*stored)[:0], body...)
		s.putScratch(sc)
		buf := make([]byte, o.BlockSize)
		obj := s.bufs.get()
		enc := testing.AllocsPerRun(20, func() {
			sc := s.getScratch()
			if _, _, err := s.encodeOnce(3, data, sc); err != nil {
				t.Fatal(err)
			}
			s.putScratch(sc)
		})
		dec := testing.AllocsPerRun(20, func() {
			*obj = append((*obj)[:0], *stored...)
			if err := s.decode(3, *obj, meta, buf); err != nil {
				t.Fatal(err)
			}
		})
		wantEnc, wantDec := 1.0, 0.0 // the Meta
		switch {
		case isGCM(e):
			// A key of the block's own: AES key schedule, GCM state and
			// its wrapper, about 1.3 KB a block; no metadata.
			wantEnc, wantDec = 4, 3
		case e.Encrypt != "":
			wantEnc = 4 // the Meta, a map and its bucket, the header string
		}
		if enc > wantEnc || dec > wantDec {
			t.Errorf("%s: %v allocations per encode (want at most %v), %v per decode (want at most %v)",
				encodingName(e), enc, wantEnc, dec, wantDec)
		}
	}
}
