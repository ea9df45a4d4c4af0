package volume

import (
	"context"

	"github.com/s3backer-go/s3backer/internal/blockstore"
)

// Extent is a run of the disk that is all stored data, or all hole.
type Extent struct {
	Length int64
	Hole   bool // not stored: reads as zeroes
}

// maxProbe bounds the blocks one Extents call looks at, so a block-status
// request over a huge range costs bounded time; callers ask again for the rest.
const maxProbe = 16384

// Extents describes [off, off+length) from its start as runs of data and
// holes, covering at most length bytes and at least one byte when length >
// 0. A store that cannot tell reports everything as data.
func (v *Volume) Extents(ctx context.Context, off, length int64) ([]Extent, error) {
	if err := v.checkRange(off, length); err != nil {
		return nil, err
	}
	if length == 0 {
		return nil, nil
	}
	prober, ok := v.store.(blockstore.Prober)
	if !ok {
		return []Extent{{Length: length}}, nil
	}
	var out []Extent
	end := off + length
	pos := off
	for probed := 0; pos < end && probed < maxProbe; probed++ {
		b := pos / v.blockSize
		next := min(end, (b+1)*v.blockSize)
		p, err := prober.Presence(ctx, uint64(b))
		if err != nil {
			return nil, err
		}
		hole := p == blockstore.Absent
		if n := len(out); n > 0 && out[n-1].Hole == hole {
			out[n-1].Length += next - pos
		} else {
			out = append(out, Extent{Length: next - pos, Hole: hole})
		}
		pos = next
	}
	return out, nil
}
