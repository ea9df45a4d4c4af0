package aead

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// KDFName names the password hash in the key info object.
const KDFName = "argon2id"

// SaltSize is the length of a new disk's random salt.
const SaltSize = 16

// KeySize is the length of the master key and of every key derived from it.
const KeySize = 32

// KDF holds Argon2id's cost parameters. They are recorded per disk, so
// raising the defaults later leaves existing disks readable.
type KDF struct {
	Time      uint32 // passes over the memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes (parallelism)
}

// DefaultKDF is RFC 9106's second recommended setting (§4): t=3, 64 MiB,
// 4 lanes, about 0.1 s of one core at start, for a key made once a mount.
var DefaultKDF = KDF{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Limits on what a key info object may ask for: a damaged or hostile one
// must not make a start run for hours or exhaust memory.
const (
	maxTime      = 64
	maxMemoryKiB = 4 << 20 // 4 GiB
)

// Validate checks the parameters are ones Argon2id accepts and that
// deriving a key with them is bounded.
func (k KDF) Validate() error {
	switch {
	case k.Time < 1 || k.Time > maxTime:
		return fmt.Errorf("argon2id time %d: must be 1 to %d", k.Time, maxTime)
	case k.Threads < 1:
		return errors.New("argon2id threads 0: must be at least 1")
	case k.MemoryKiB < 8*uint32(k.Threads) || k.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB: must be %d to %d KiB (8 KiB per thread at least)",
			k.MemoryKiB, 8*uint32(k.Threads), maxMemoryKiB)
	}
	return nil
}

func (k KDF) String() string {
	return fmt.Sprintf("%s t=%d m=%dKiB p=%d", KDFName, k.Time, k.MemoryKiB, k.Threads)
}

// NewSalt returns a random salt for a new disk.
func NewSalt() ([]byte, error) {
	s := make([]byte, SaltSize)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("random salt: %w", err)
	}
	return s, nil
}

// masterKey runs Argon2id: slow and memory-hard on purpose, so that every
// guess at the password costs an attacker as much.
func masterKey(password, salt []byte, k KDF) ([]byte, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	if len(salt) < 8 {
		return nil, fmt.Errorf("salt of %d bytes: at least 8 needed", len(salt))
	}
	return argon2.IDKey(password, salt, k.Time, k.MemoryKiB, k.Threads, KeySize), nil
}
