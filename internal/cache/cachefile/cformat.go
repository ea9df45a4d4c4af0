package cachefile

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The C s3backer's cache file (1.5.0 to 2.x; s3backer-format-detail.md
// §8): a 64-byte header (32 before 1.5) starting with the magic
// 0xe496f17b, then one entry per slot: block (u32), ETag (16 bytes),
// flags (u32, bit 0 dirty); 20 bytes without flags before 1.5. Host byte
// order: little-endian on every machine it is known to run on.
const (
	cMagic        = 0xe496f17b
	cFlagNew      = 1 // header flag: the 1.5+ format
	cEntryDirty   = 1
	cHeaderNew    = 64
	cHeaderOld    = 32
	cEntryNew     = 24
	cEntryOld     = 20
	cMaxSensible  = 1 << 31
	cTokenOffset  = 32
	cMaxBlocksOff = 28
)

// cFile is what matters of a C cache file here.
type cFile struct {
	blockSize int
	slots     int
	token     uint32 // 0 in the pre-1.5 format
	dirty     int    // dirty entries: blocks the C s3backer has not written back
}

func isCFile(b []byte) bool {
	return len(b) >= 4 && binary.LittleEndian.Uint32(b) == cMagic
}

// parseCFile reads the header and counts the dirty entries of the
// directory dir (the bytes after the header, as much as the file has).
func parseCFile(hdr []byte, readDir func(off int64, n int) ([]byte, error)) (cFile, error) {
	le := binary.LittleEndian
	if len(hdr) < cHeaderOld {
		return cFile{}, errors.New("cache file of the C s3backer with a truncated header")
	}
	hsize := le.Uint32(hdr[4:])
	flags := le.Uint32(hdr[24:])
	c := cFile{blockSize: int(le.Uint32(hdr[16:])), slots: int(le.Uint32(hdr[cMaxBlocksOff:]))}
	esize := cEntryOld
	switch {
	case hsize == cHeaderNew && flags&cFlagNew != 0 && len(hdr) >= cHeaderNew:
		esize = cEntryNew
		c.token = le.Uint32(hdr[cTokenOffset:])
	case hsize == cHeaderOld && flags == 0:
	default:
		return cFile{}, fmt.Errorf("cache file of the C s3backer with an unknown header (size %d, flags %#x)", hsize, flags)
	}
	if c.slots <= 0 || c.slots > cMaxSensible/esize {
		return cFile{}, fmt.Errorf("cache file of the C s3backer with %d slots", c.slots)
	}
	if esize == cEntryOld {
		return c, nil // no dirty flag: every block was written back
	}
	dir, err := readDir(int64(hsize), c.slots*esize)
	if err != nil {
		return cFile{}, err
	}
	for i := 0; i+esize <= len(dir); i += esize {
		if le.Uint32(dir[i+20:])&cEntryDirty != 0 {
			c.dirty++
		}
	}
	return c, nil
}
