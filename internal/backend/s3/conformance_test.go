package s3

import (
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/backend/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		o, _ := gwOptions(t)
		o.AcceptEncoding = acceptEncoding("AES-128-CBC")
		o.StorageClass = "STANDARD"
		return mustNew(t, o)
	})
}
