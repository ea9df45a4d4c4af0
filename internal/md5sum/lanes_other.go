//go:build !amd64 || purego

package md5sum

const haveLanes = false

func block8(*[4][lanes]uint32, *[lanes]*byte, int) { panic("md5sum: no multi-buffer MD5 here") }
