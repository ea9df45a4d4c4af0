package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
)

// parseUint reads a plain non-negative decimal integer no larger than max.
// No sign, no spaces, no suffix: s3backer's %u would also take "-1" (as
// 4294967295) or "12abc"; we refuse both rather than guess.
func parseUint(s string, max uint64) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty value (want a non-negative integer)")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a non-negative integer")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("out of range (at most %d)", max)
	}
	return n, nil
}

// parseFileMode reads an octal permission mode such as 0644 or 644.
func parseFileMode(s string) (fs.FileMode, error) {
	if s == "" {
		return 0, errors.New("empty value (want an octal mode such as 0644)")
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, errors.New("not an octal mode (such as 0644)")
	}
	if n > 0o7777 {
		return 0, errors.New("mode out of range (at most 07777)")
	}
	// Keep setuid/setgid/sticky as Go's flag bits so the value round-trips.
	m := fs.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m, nil
}

// ipTOSNames are the <netinet/ip.h> IPTOS_* names s3backer accepts.
var ipTOSNames = map[string]int{
	"lowdelay":    0x10,
	"throughput":  0x08,
	"reliability": 0x04,
	"lowcost":     0x02,
	"mincost":     0x02,
}

// parseIPTOS reads a type-of-service byte: a name, or an integer in C
// strtol base-0 syntax (decimal, 0x hex or 0 octal) between 0 and 255.
func parseIPTOS(s string) (int, error) {
	if v, ok := ipTOSNames[s]; ok {
		return v, nil
	}
	base, digits := 10, s
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	n, err := strconv.ParseUint(digits, base, 8)
	if err != nil {
		return 0, errors.New("want lowdelay, throughput, reliability, lowcost, mincost or a number from 0 to 255")
	}
	return int(n), nil
}

// parseLevel reads a compression level: an optionally signed decimal int.
func parseLevel(s string) (int, bool) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(n), true
}
