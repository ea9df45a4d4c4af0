package config

import (
	"math"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1", 1},
		{"4096", 4096},
		{"4k", 4096},
		{"4K", 4096},
		{"256k", 256 << 10},
		{"1m", 1 << 20},
		{"1M", 1 << 20},
		{"3g", 3 << 30},
		{"1t", 1 << 40},
		{"2T", 2 << 40},
		{"1p", 1 << 50},
		{"7e", 7 << 60},
		{"7E", 7 << 60},
		{"8191p", 8191 << 50},
		{"9223372036854775807", math.MaxInt64},
		{"007k", 7 << 10},
	}
	for _, tt := range good {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "empty size"},
		{"k", "invalid size"},
		{"4x", "invalid size"},
		{"4kb", "invalid size"},
		{"4 k", "invalid size"},
		{" 4k", "invalid size"},
		{"-4k", "invalid size"},
		{"+4k", "invalid size"},
		{"1.5g", "invalid size"},
		{"0x10", "invalid size"},
		{"1z", "too big"},
		{"1Z", "too big"},
		{"1y", "too big"},
		{"8e", "too big"},
		{"8192p", "too big"},
		{"9223372036854775808", "too big"},
		{"99999999999999999999999", "too big"},
	}
	for _, tt := range bad {
		_, err := ParseSize(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSize(%q) error = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{-5, "-5"},
		{1000, "1000"},
		{1024, "1k"},
		{4096, "4k"},
		{1536, "1536"},
		{3 << 20, "3m"},
		{1 << 30, "1g"},
		{1 << 40, "1t"},
		{5 << 50, "5p"},
		{7 << 60, "7e"},
		{1<<40 + 1<<10, "1073741825k"},
	}
	for _, tt := range tests {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in > 0 {
			if back, err := ParseSize(FormatSize(tt.in)); err != nil || back != tt.in {
				t.Errorf("round trip %d: %d, %v", tt.in, back, err)
			}
		}
	}
}
