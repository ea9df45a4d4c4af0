package s3

import (
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// debugTransport logs every request and response line and headers
// (--debug-http), with secrets redacted, at Info level: asking for it is
// the point.
type debugTransport struct {
	next http.RoundTripper
	log  *slog.Logger
}

const redacted = "REDACTED"

// secretHeaders hold credentials, signatures or customer keys (canonical
// form).
var secretHeaders = map[string]bool{
	"Authorization":        true,
	"Proxy-Authorization":  true,
	"Cookie":               true,
	"Set-Cookie":           true,
	"X-Amz-Security-Token": true,
	"X-Amz-Server-Side-Encryption-Customer-Key":             true,
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key": true,
	"X-Aws-Ec2-Metadata-Token":                              true,
}

// secretQuery are presigned-URL parameters that carry credentials.
var secretQuery = []string{"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token"}

func (d *debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	d.log.InfoContext(ctx, "http request", "method", req.Method, "url", redactURL(req.URL),
		"headers", redactHeaders(req.Header))
	resp, err := d.next.RoundTrip(req)
	if err != nil {
		d.log.InfoContext(ctx, "http error", "method", req.Method, "url", redactURL(req.URL), "error", err)
		return resp, err
	}
	d.log.InfoContext(ctx, "http response", "method", req.Method, "url", redactURL(req.URL),
		"status", resp.Status, "proto", resp.Proto, "headers", redactHeaders(resp.Header))
	return resp, nil
}

// redactHeaders renders headers as "Name: value" lines in name order,
// secrets replaced.
func redactHeaders(h http.Header) string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		for _, v := range h[k] {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			if isSecretHeader(k) {
				v = redacted
			}
			b.WriteString(k + ": " + v)
		}
	}
	return b.String()
}

func isSecretHeader(name string) bool { return secretHeaders[http.CanonicalHeaderKey(name)] }

func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		changed := false
		for k := range q {
			for _, s := range secretQuery {
				if strings.EqualFold(k, s) {
					q.Set(k, redacted)
					changed = true
				}
			}
		}
		if changed {
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}
