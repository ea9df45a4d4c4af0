package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeSuffixes are s3backer's, in order; each is a further power of 1024.
const sizeSuffixes = "kmgtpezy"

// ParseSize reads "<integer>[suffix]" where the optional one-letter suffix
// k, m, g, t, p or e (either case) multiplies by 1024^1 … 1024^6. z and y
// are s3backer suffixes too large for 64 bits: "too big". Unlike s3backer
// 2.x, a plain integer ("4096") is accepted, and overflow is detected.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	digits, shift := s, 0
	if last := s[len(s)-1]; last < '0' || last > '9' {
		i := strings.IndexByte(sizeSuffixes, lower(last))
		if i < 0 {
			return 0, fmt.Errorf("invalid size %q (want an integer with an optional k, m, g, t, p or e suffix)", s)
		}
		digits, shift = s[:len(s)-1], 10*(i+1)
	}
	if digits == "" {
		return 0, fmt.Errorf("invalid size %q (want an integer with an optional k, m, g, t, p or e suffix)", s)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, fmt.Errorf("invalid size %q (want an integer with an optional k, m, g, t, p or e suffix)", s)
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || shift >= 64 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q is too big", s)
	}
	return int64(n << shift), nil
}

// FormatSize writes n with the largest suffix that divides it exactly, as
// s3backer prints sizes: 4096 → "4k", 1099511627776 → "1t", 1000 → "1000".
func FormatSize(n int64) string {
	if n <= 0 {
		return strconv.FormatInt(n, 10)
	}
	for i := 5; i >= 0; i-- { // e … k
		shift := 10 * (i + 1)
		if n&(1<<shift-1) == 0 {
			return strconv.FormatInt(n>>shift, 10) + sizeSuffixes[i:i+1]
		}
	}
	return strconv.FormatInt(n, 10)
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
