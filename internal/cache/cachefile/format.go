package cachefile

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
)

// The on-disk layout (docs/cachefile.md). All integers little-endian.
const (
	magic   = "S3BGOCF\x00" // never the C s3backer's 7b f1 96 e4
	version = 1

	pageSize  = 4096 // alignment of the directory and the data area
	headerLen = 512  // one sector: written whole, checked by its CRC
	dirStart  = pageSize
	entryLen  = 64 // never straddles a sector
	maxTagLen = 32 // an S3 ETag (32 hex digits); longer tags are not kept
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// header is the file's first sector.
//
//	0   8  magic "S3BGOCF\0"
//	8   4  version (1)
//	12  4  block size
//	16  4  slots (capacity in blocks)
//	20  4  mount token of the mount that last opened the file (0: none)
//	24  8  blocks of the disk when the file was opened (informational)
//	32  8  offset of the data area
//	40  468 reserved, zero
//	508 4  CRC32C of bytes 0..507
type header struct {
	blockSize int
	slots     int
	token     uint32
	numBlocks uint64
}

func dataStart(slots int) int64 {
	end := int64(dirStart) + int64(slots)*entryLen
	return (end + pageSize - 1) / pageSize * pageSize
}

func (h header) encode() []byte {
	b := make([]byte, headerLen)
	copy(b, magic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], version)
	le.PutUint32(b[12:], uint32(h.blockSize))
	le.PutUint32(b[16:], uint32(h.slots))
	le.PutUint32(b[20:], h.token)
	le.PutUint64(b[24:], h.numBlocks)
	le.PutUint64(b[32:], uint64(dataStart(h.slots)))
	le.PutUint32(b[headerLen-4:], crc(b[:headerLen-4]))
	return b
}

// headerProblem says what is wrong with a header of ours, "" if nothing.
func decodeHeader(b []byte) (header, string) {
	le := binary.LittleEndian
	switch {
	case len(b) < headerLen:
		return header{}, "file too short for its header"
	case le.Uint32(b[headerLen-4:]) != crc(b[:headerLen-4]):
		return header{}, "header checksum mismatch"
	case le.Uint32(b[8:]) != version:
		return header{}, "unknown format version " + strconv.FormatUint(uint64(le.Uint32(b[8:])), 10)
	}
	h := header{
		blockSize: int(le.Uint32(b[12:])),
		slots:     int(le.Uint32(b[16:])),
		token:     le.Uint32(b[20:]),
		numBlocks: le.Uint64(b[24:]),
	}
	if h.blockSize <= 0 || h.blockSize&(h.blockSize-1) != 0 || h.slots <= 0 ||
		int64(le.Uint64(b[32:])) != dataStart(h.slots) {
		return header{}, "inconsistent header"
	}
	return h, ""
}

// Entry states.
const (
	stEmpty = 0
	stClean = 1 // same data as the store below, which had tag then
	stDirty = 2 // newer than the store below
)

const flagZero = 1 // the slot holds zeroes; its data area is not used

// entry is one slot's directory entry.
//
//	0   1  state: 0 empty, 1 clean, 2 dirty
//	1   1  flags: bit 0 zero block
//	2   1  tag length (0..32)
//	3   1  reserved
//	4   4  CRC32C of the slot's data (0 for a zero block)
//	8   8  block number
//	16  8  sequence number (file-wide, grows with every entry written)
//	24  4  mount token it was written under
//	28  32 tag (the block's ETag when clean)
//	60  4  CRC32C of bytes 0..59 followed by the slot number (u32)
type entry struct {
	state   uint8
	zero    bool
	dataCRC uint32
	block   uint64
	seq     uint64
	token   uint32
	tag     string
}

func (e entry) encode(slot int, b []byte) {
	clear(b[:entryLen])
	if e.state == stEmpty {
		return // all zero: empty, and what a sparse file reads
	}
	le := binary.LittleEndian
	b[0] = e.state
	if e.zero {
		b[1] = flagZero
	}
	if len(e.tag) <= maxTagLen {
		b[2] = byte(len(e.tag))
		copy(b[28:60], e.tag)
	}
	le.PutUint32(b[4:], e.dataCRC)
	le.PutUint64(b[8:], e.block)
	le.PutUint64(b[16:], e.seq)
	le.PutUint32(b[24:], e.token)
	le.PutUint32(b[60:], entryCRC(slot, b))
}

func entryCRC(slot int, b []byte) uint32 {
	var s [4]byte
	binary.LittleEndian.PutUint32(s[:], uint32(slot))
	return crc32.Update(crc(b[:60]), castagnoli, s[:])
}

// decodeEntry returns the entry in b and whether it is valid: a known
// state and a matching checksum (a torn or stale-slot entry fails).
func decodeEntry(slot int, b []byte) (entry, bool) {
	le := binary.LittleEndian
	if b[0] == stEmpty || b[0] > stDirty || le.Uint32(b[60:]) != entryCRC(slot, b) || b[2] > maxTagLen {
		return entry{}, false
	}
	return entry{
		state:   b[0],
		zero:    b[1]&flagZero != 0,
		dataCRC: le.Uint32(b[4:]),
		block:   le.Uint64(b[8:]),
		seq:     le.Uint64(b[16:]),
		token:   le.Uint32(b[24:]),
		tag:     string(b[28 : 28+int(b[2])]),
	}, true
}
