package s3

import (
	"errors"
	"os"

	"github.com/s3backer-go/s3backer/internal/config"
)

// OptionsFromConfig maps s3backer's flags to Options, resolving the
// credentials (ResolveCredentials) and the endpoint (config's
// ResolvedBaseURL and UseVhost). Logger is left for the caller to set.
func OptionsFromConfig(cfg *config.Config) (Options, error) {
	if cfg.AuthVersion == "aws2" {
		return Options{}, errors.New("--authVersion=aws2 is not supported; aws4 works with every S3 service")
	}
	creds, err := ResolveCredentials(cfg, os.LookupEnv)
	if err != nil {
		return Options{}, err
	}
	return Options{
		Bucket:           cfg.Bucket,
		BaseURL:          cfg.ResolvedBaseURL(),
		Region:           cfg.Region,
		Vhost:            cfg.UseVhost(),
		Credentials:      creds,
		AccessType:       cfg.AccessType,
		StorageClass:     cfg.StorageClass,
		SSE:              cfg.SSE,
		SSEKeyID:         cfg.SSEKeyID,
		AcceptEncoding:   acceptEncoding(cfg.Encrypt),
		Timeout:          cfg.Timeout,
		HTTP11:           cfg.HTTP11,
		Insecure:         cfg.Insecure,
		CACert:           cfg.CACert,
		NoKeepAlive:      cfg.NoCurlCache,
		IPTOS:            cfg.IPTOS,
		MaxUploadSpeed:   cfg.MaxUploadSpeed,
		MaxDownloadSpeed: cfg.MaxDownloadSpeed,
		// Every block-cache worker, survey thread and read-ahead may hold a
		// connection at once; keep them all alive.
		MaxConnsPerHost: max(defaultMaxConns, cfg.BlockCacheThreads+cfg.ListBlocksThreads+cfg.ReadAhead),
		DebugHTTP:       cfg.DebugHTTP,
		AppID:           "s3backer-go/" + config.Version,
	}, nil
}

// acceptEncoding is the Accept-Encoding s3backer 2.x sends on a block GET
// (§2.3): the compressions it can undo, then the cipher if encrypting.
func acceptEncoding(cipher string) string {
	s := "deflate, zstd"
	if cipher != "" {
		s += ", encrypt-" + cipher
	}
	return s
}
