//go:build !race

package blockcrypt

const raceEnabled = false
