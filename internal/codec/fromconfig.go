package codec

import (
	"log/slog"

	"github.com/s3backer-go/s3backer/internal/config"
)

// OptionsFromConfig is the codec's configuration for a settled cfg (after
// Finish: geometry known). password is the encryption password, already
// read (internal/password); nil without --encrypt.
func OptionsFromConfig(cfg *config.Config, password []byte, log *slog.Logger) Options {
	return Options{
		Prefix:                 cfg.Prefix,
		HashPrefix:             cfg.BlockHashPrefix,
		BlockSize:              int(cfg.BlockSize),
		NumBlocks:              cfg.NumBlocks(),
		ListThreads:            cfg.ListBlocksThreads,
		VerifyETag:             cfg.SSE != "aws:kms", // KMS ETags are not MD5s
		DefaultContentEncoding: cfg.DefaultContentEncoding,
		Compress:               cfg.Compress,
		CompressLevel:          cfg.CompressLevel,
		Encrypt:                cfg.Encrypt,
		KeyLength:              cfg.KeyLength,
		Password:               password,
		Bucket:                 cfg.Bucket,
		Logger:                 log,
	}
}
