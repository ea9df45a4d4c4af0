package s3

import (
	"context"
	"io"
	"net/http"

	"golang.org/x/time/rate"
)

// rateLimitTransport caps the speed of each request body (--maxUploadSpeed)
// and response body (--maxDownloadSpeed). Like curl's limits in s3backer the
// cap is per transfer, which is why config requires one block at that speed
// to fit in --timeout.
type rateLimitTransport struct {
	next     http.RoundTripper
	up, down int64 // bytes per second; 0 = unlimited
}

func (t *rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if t.up > 0 && req.Body != nil && req.Body != http.NoBody {
		r := req.Clone(ctx)
		r.Body = newLimitedBody(ctx, req.Body, t.up)
		if get := req.GetBody; get != nil {
			r.GetBody = func() (io.ReadCloser, error) {
				b, err := get()
				if err != nil {
					return nil, err
				}
				return newLimitedBody(ctx, b, t.up), nil
			}
		}
		req = r
	}
	resp, err := t.next.RoundTrip(req)
	if err == nil && t.down > 0 && resp.Body != nil {
		resp.Body = newLimitedBody(ctx, resp.Body, t.down)
	}
	return resp, err
}

// limitedBody is a token bucket over one body: each Read takes at most a
// burst and waits for as many tokens as it got bytes.
type limitedBody struct {
	ctx   context.Context
	rc    io.ReadCloser
	lim   *rate.Limiter
	burst int
}

func newLimitedBody(ctx context.Context, rc io.ReadCloser, bytesPerSec int64) *limitedBody {
	// Small bursts keep the speed even; 32 KiB is curl's buffer size.
	burst := int(min(bytesPerSec, 32<<10))
	return &limitedBody{ctx: ctx, rc: rc, lim: rate.NewLimiter(rate.Limit(bytesPerSec), burst), burst: burst}
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if len(p) > l.burst {
		p = p[:l.burst]
	}
	n, err := l.rc.Read(p)
	if n > 0 {
		if werr := l.lim.WaitN(l.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }
