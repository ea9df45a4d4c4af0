// Package blockkey names blocks the way s3backer does, in a bucket and in
// --test directories: PREFIX [HASH "-"] HEX, HEX being the block number as
// exactly 8 lowercase hex digits (../../docs/FORMAT.md, "Objects").
package blockkey

import "fmt"

// Namer turns block numbers into object names and back.
type Namer struct {
	Prefix     string // verbatim prefix ("" or "dir/")
	HashPrefix bool   // --blockHashPrefix
	NumBlocks  uint64 // names of blocks >= NumBlocks do not parse
}

const hexDigits = "0123456789abcdef"

// Hash is s3backer's --blockHashPrefix function: a bijection on uint32 that
// spreads consecutive blocks over S3's key space.
func Hash(n uint32) uint32 {
	h := n
	for i := uint32(12); i >= 1; i-- {
		h = ((h>>8)^h)*0x6b + i
	}
	return h
}

func appendHex8(b []byte, v uint32) []byte {
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[(v>>uint(shift))&0xf])
	}
	return b
}

// Name returns the object name of block n.
func (k Namer) Name(n uint64) string {
	b := make([]byte, 0, len(k.Prefix)+17)
	b = append(b, k.Prefix...)
	if k.HashPrefix {
		b = appendHex8(b, Hash(uint32(n)))
		b = append(b, '-')
	}
	b = appendHex8(b, uint32(n))
	return string(b)
}

func parseHex8(s string) (uint32, bool) {
	if len(s) != 8 {
		return 0, false
	}
	var v uint32
	for i := 0; i < 8; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		default: // s3backer rejects upper case too
			return 0, false
		}
	}
	return v, true
}

// Parse returns the block number named by name, or ok=false for any name
// that is not one of this disk's blocks (other files, the mount flag,
// blocks past the end, a hash that does not match).
func (k Namer) Parse(name string) (n uint64, ok bool) {
	if len(name) < len(k.Prefix) || name[:len(k.Prefix)] != k.Prefix {
		return 0, false
	}
	rest := name[len(k.Prefix):]
	var hash uint32
	if k.HashPrefix {
		if len(rest) != 17 || rest[8] != '-' {
			return 0, false
		}
		if hash, ok = parseHex8(rest[:8]); !ok {
			return 0, false
		}
		rest = rest[9:]
	}
	v, ok := parseHex8(rest)
	if !ok || uint64(v) >= k.NumBlocks {
		return 0, false
	}
	if k.HashPrefix && Hash(v) != hash {
		return 0, false
	}
	return uint64(v), true
}

// String describes the naming for messages.
func (k Namer) String() string {
	return fmt.Sprintf("prefix %q, hash prefix %v", k.Prefix, k.HashPrefix)
}
