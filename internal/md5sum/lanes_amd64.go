//go:build amd64 && !purego

package md5sum

import "golang.org/x/sys/cpu"

var (
	// haveLanes: block8 needs AVX2.
	haveLanes = cpu.X86.HasAVX2
	// useVL: the AVX-512VL form is about a third faster (dependency chain
	// of a step 4 instructions long instead of 6).
	useVL = cpu.X86.HasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL
)

// block8 runs MD5 over n 64-byte blocks of 8 buffers (ptrs, each at least
// 64n bytes), lane l of state being buffer l's a, b, c, d.
func block8(state *[4][lanes]uint32, ptrs *[lanes]*byte, n int) {
	if useVL {
		block8vl(state, ptrs, n)
	} else {
		block8avx2(state, ptrs, n)
	}
}

//go:noescape
func block8avx2(state *[4][lanes]uint32, ptrs *[lanes]*byte, n int)

//go:noescape
func block8vl(state *[4][lanes]uint32, ptrs *[lanes]*byte, n int)
