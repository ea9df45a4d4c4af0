package cachefile

// A part write changes a few KiB of a slot whose entry holds the CRC32C of
// the whole slot. CRCs are linear, so the new CRC follows from the old one
// and the part before and after, without reading the rest of the slot:
// with the data split as A‖P‖C (P the part, C the tail of length c),
//
//	crc(A‖P'‖C) = crc(A‖P‖C) ⊕ (crc(P) ⊕ crc(P')) · x^(8c)  mod the polynomial
//
// (the constant terms of the CRC's initial value and final XOR cancel,
// since P and P' have one length). Multiplying by x^(8c) is a handful of
// 32-bit carry-less products (zlib's crc32_combine method), so a 4 KiB
// write into a 1 MiB slot costs two 4 KiB CRCs, not one of 1 MiB.

// castagnoliReversed is the CRC32C polynomial, bit-reversed as
// hash/crc32 uses it.
const castagnoliReversed = 0x82f63b78

// mulModP returns a·b modulo the polynomial, both in the reversed bit
// order of the CRC (bit 31 is x^0).
func mulModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReversed
		} else {
			b >>= 1
		}
	}
	return p
}

// x2n[k] is x^(2^k) modulo the polynomial.
var x2n = func() (t [64]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = mulModP(p, p)
	}
	return t
}()

// xPow8 returns x^(8n) modulo the polynomial (n < 2^60): the operator
// that appends n zero bytes to a CRC register.
func xPow8(n uint64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = mulModP(x2n[k], p)
		}
	}
	return p
}

// crcReplace returns the CRC32C of data whose CRC was sum after the bytes
// oldPart, followed by tail more bytes, are replaced by newPart (of the
// same length).
func crcReplace(sum uint32, oldPart, newPart []byte, tail int) uint32 {
	d := crc(oldPart) ^ crc(newPart)
	if d == 0 {
		return sum
	}
	return sum ^ mulModP(xPow8(uint64(tail)), d)
}
