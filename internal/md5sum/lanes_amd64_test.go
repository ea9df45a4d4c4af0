//go:build amd64 && !purego

package md5sum

import "testing"

// TestSumLanesAVX2 checks the AVX2 form too on a CPU that would use the
// AVX-512VL one.
func TestSumLanesAVX2(t *testing.T) {
	if !haveLanes {
		t.Skip("no AVX2 on this CPU")
	}
	if !useVL {
		t.Skip("TestSumLanes checked the AVX2 form: this CPU has no AVX-512VL")
	}
	useVL = false
	defer func() { useVL = true }()
	checkSumLanes(t)
}
