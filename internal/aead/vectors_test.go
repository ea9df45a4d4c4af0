package aead

// Known answers for password "pw" under testParams. The master key is the
// reference Argon2id's (`echo -n pw | argon2 0123456789abcdef -id -t 1 -k 64
// -p 1 -l 32 -r`, Debian's argon2 package); the check value and the sealed
// block were computed once here, and TestFormatIsAsDocumented ties them to
// the standard library's HKDF and GCM.
const (
	wantMaster  = "1e0b1b73a143c25fea6d45b10ebafe6637ad618284fbb7c37b96ed98d7437e6d"
	wantCheck   = "2311de821cb4f4f9d2d3af8f7a646ff6ecf0c7ed6e915c5ed98653da0e92d571"
	knownSealed = "794fa63a500fb5154a9ac11e16676964a868d3cc25b797bf4ff33a9382afabebb8db98bab42ace" // "known block", block 5, deflate
)
