package md5sum

import (
	"crypto/md5"
	"encoding"
	"encoding/binary"
)

//go:generate go run gen_lanes.go

// lanes is how many buffers sumLanes hashes at once.
const lanes = 8

// md5IV is MD5's initial state (a, b, c, d).
var md5IV = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}

// sumLanes sets out[i] to the MD5 digest of bufs[i], for up to lanes
// buffers. Where the CPU has a multi-buffer implementation (haveLanes),
// the whole 64-byte blocks that every buffer has are hashed together, in
// the caller's goroutine; each buffer's remaining bytes and padding are
// then hashed on its own by crypto/md5, resumed from that state. The
// buffers of a batch are usually whole blocks of one size, so the rest is
// nothing but the padding.
func sumLanes(bufs [][]byte, out [][Size]byte) {
	if len(bufs) > lanes || len(out) < len(bufs) {
		panic("md5sum: sumLanes: bad batch")
	}
	n := 0 // whole 64-byte blocks every buffer has
	if haveLanes && len(bufs) > 1 {
		n = len(bufs[0]) / md5.BlockSize
		for _, b := range bufs[1:] {
			n = min(n, len(b)/md5.BlockSize)
		}
	}
	if n == 0 {
		for i, b := range bufs {
			out[i] = md5.Sum(b)
		}
		return
	}
	var state [4][lanes]uint32
	var ptrs [lanes]*byte
	for l := range lanes {
		for w := range state {
			state[w][l] = md5IV[w]
		}
		// A lane without a buffer hashes the first one again, unread.
		ptrs[l] = &bufs[l%len(bufs)][0]
	}
	block8(&state, &ptrs, n)

	// crypto/md5's saved-state format: magic, a..d, the 64-byte pending
	// block (none here), the length so far.
	var saved [4 + 4*4 + md5.BlockSize + 8]byte
	copy(saved[:], "md5\x01")
	binary.BigEndian.PutUint64(saved[len(saved)-8:], uint64(n*md5.BlockSize))
	for i, b := range bufs {
		for w := range state {
			binary.BigEndian.PutUint32(saved[4+4*w:], state[w][i])
		}
		h := md5.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(saved[:]); err != nil {
			panic("md5sum: resume crypto/md5: " + err.Error())
		}
		h.Write(b[n*md5.BlockSize:])
		h.Sum(out[i][:0])
	}
}
