package main

import "testing"

func TestParseNBDTargetDevice(t *testing.T) {
	for in, want := range map[string]string{
		"/dev/nbd0":           "/dev/nbd0",
		"/dev/nbd12":          "/dev/nbd12",
		"/dev//nbd3/":         "/dev/nbd3",
		"/dev/disk/by-id/x/.": "/dev/disk/by-id/x", // checked when attaching
	} {
		tg, err := parseNBDTarget(in)
		if err != nil || tg.device != want || tg.network != "" {
			t.Errorf("parseNBDTarget(%q) = %+v, %v; want device %q", in, tg, err, want)
		}
	}
	for _, in := range []string{"nbd://127.0.0.1:10809", "nbd+unix:///?socket=/tmp/s"} {
		tg, err := parseNBDTarget(in)
		if err != nil || tg.device != "" {
			t.Errorf("parseNBDTarget(%q) = %+v, %v; want a socket target", in, tg, err)
		}
	}
	if _, err := parseNBDTarget("nbd0"); err == nil {
		t.Error("a relative device name was accepted")
	}
}

func TestKernelBlockSize(t *testing.T) {
	for size, want := range map[int64]int{
		256 << 20:    4096,
		1<<20 + 2048: 2048,
		1<<20 + 512:  512,
		4096 * 3:     4096,
	} {
		if got, err := kernelBlockSize(size); err != nil || got != want {
			t.Errorf("kernelBlockSize(%d) = %d, %v; want %d", size, got, err, want)
		}
	}
	if _, err := kernelBlockSize(1<<20 + 100); err == nil {
		t.Error("a size that is not a multiple of 512 was accepted")
	}
}
