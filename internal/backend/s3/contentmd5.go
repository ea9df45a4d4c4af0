package s3

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// withContentMD5 adds Content-MD5 to a request whose body the SDK builds
// (DeleteObjects). AWS accepts the SDK's CRC32 instead, but many
// S3-compatible servers insist on Content-MD5 there, and s3backer sends it.
func withContentMD5(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("s3backer:ContentMD5",
		func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			req, ok := in.Request.(*smithyhttp.Request)
			if !ok || req.Header.Get("Content-Md5") != "" {
				return next.HandleBuild(ctx, in)
			}
			if s := req.GetStream(); s != nil {
				h := md5.New()
				if _, err := io.Copy(h, s); err != nil {
					return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("content-md5: %w", err)
				}
				if err := req.RewindStream(); err != nil {
					return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("content-md5: %w", err)
				}
				req.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(h.Sum(nil)))
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
}
