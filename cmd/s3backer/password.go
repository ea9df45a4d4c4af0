package main

import (
	"sync"

	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/daemon"
	"github.com/s3backer-go/s3backer/internal/exitcode"
	"github.com/s3backer-go/s3backer/internal/password"
)

var passwordOnce struct {
	sync.Once
	pw  []byte
	err error
}

// diskPassword is the encryption password (nil without --encrypt), read
// once per process: handed down by the parent of a daemon, else from
// --password, --passwordFile or a prompt. The parent reads it before
// detaching, so the prompt happens on the user's terminal.
func diskPassword(cfg *config.Config) ([]byte, error) {
	passwordOnce.Do(func() {
		if cfg.Encrypt == "" {
			return
		}
		if passwordOnce.pw, passwordOnce.err = daemon.Secret(); passwordOnce.pw != nil || passwordOnce.err != nil {
			return
		}
		passwordOnce.pw, passwordOnce.err = password.FromConfig(cfg, nil)
		if passwordOnce.err != nil {
			passwordOnce.err = exitcode.UsageError{Err: passwordOnce.err}
		}
	})
	return passwordOnce.pw, passwordOnce.err
}
