package s3

import (
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// getter sends a block's GET straight through the shared HTTP client,
// signed by the SDK's SigV4 signer, instead of through the SDK's
// GetObject: the SDK builds and runs a stack of some forty middlewares
// for every request (endpoint rules, user agent, invocation IDs, response
// deserialisation), about a sixth of the CPU of a cold sequential read
// here (perf), for a request whose URL and headers never change but for
// the key. Everything else (transport, TLS, proxies, --debug-http, rate
// limits, timeouts, error classification) is shared with the SDK path.
type getter struct {
	hc     *http.Client
	creds  aws.CredentialsProvider // nil: anonymous, unsigned
	signer *v4.Signer
	region string
	// prefix is the URL up to the key ("http://host/bucket/" or
	// "http://bucket.host/"), escaped.
	prefix         string
	userAgent      string
	acceptEncoding string
}

// emptySHA256 is the SHA-256 of an empty payload, which a GET signs.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// dnsBucket: bucket names the SDK puts in the host name as they are.
var dnsBucket = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

// newGetter returns the direct GET path for o, with the (cached)
// credentials the SDK client signs with, or nil where the URL would be
// the SDK endpoint rules' to decide (a virtual-host bucket name that is
// not a plain DNS label), so that the SDK path serves the GETs there too.
func newGetter(o *Options, hc *http.Client, creds aws.CredentialsProvider) *getter {
	u, err := url.Parse(o.BaseURL)
	if err != nil || u.RawQuery != "" || u.User != nil {
		return nil
	}
	base := strings.TrimSuffix(u.EscapedPath(), "/") + "/"
	var prefix string
	// As the SDK's endpoint rules: a virtual host only for a bucket name
	// that is a DNS label, and never on an IP address.
	if o.Vhost && net.ParseIP(u.Hostname()) == nil {
		if !dnsBucket.MatchString(o.Bucket) {
			return nil
		}
		prefix = u.Scheme + "://" + o.Bucket + "." + u.Host + base
	} else {
		prefix = u.Scheme + "://" + u.Host + base + httpbinding.EscapePath(o.Bucket, true) + "/"
	}
	g := &getter{
		hc:             hc,
		region:         o.Region,
		prefix:         prefix,
		userAgent:      cmp.Or(o.AppID, "s3backer-go"),
		acceptEncoding: o.AcceptEncoding,
	}
	if _, anon := creds.(aws.AnonymousCredentials); !anon {
		g.creds = creds
		// As the SDK signs for S3: the path is escaped once, not twice.
		g.signer = v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true })
	}
	return g
}

// get sends the GET of key and returns the answer with a 2xx status; an
// error answer becomes what classify makes of it.
func (g *getter) get(ctx context.Context, b *Backend, key string, opt backend.GetOptions) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.prefix+httpbinding.EscapePath(key, false), nil)
	if err != nil {
		return nil, &backend.Permanent{Err: err}
	}
	req.Header.Set("User-Agent", g.userAgent)
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	if g.acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", g.acceptEncoding)
	}
	if opt.IfNoneMatch != "" {
		req.Header.Set("If-None-Match", quoteETag(opt.IfNoneMatch))
	}
	if opt.IfMatch != "" {
		req.Header.Set("If-Match", quoteETag(opt.IfMatch))
	}
	if g.creds != nil {
		cr, err := g.creds.Retrieve(ctx)
		if err != nil {
			return nil, b.classify(ctx, err)
		}
		if err := g.signer.SignHTTP(ctx, cr, req, emptySHA256, "s3", g.region, time.Now().UTC()); err != nil {
			return nil, &backend.Permanent{Err: fmt.Errorf("sign: %w", err)}
		}
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return nil, b.classify(ctx, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	se := &StatusError{Status: resp.StatusCode}
	// The error document, if any: <Error><Code>…</Code><Message>…</Message>.
	var doc struct{ Code, Message string }
	if xml.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&doc) == nil {
		se.Code, se.Message = doc.Code, doc.Message
	}
	if se.Code == "" && resp.StatusCode == http.StatusNotFound {
		se.Code = "NotFound"
	}
	se.err = errors.New(http.StatusText(resp.StatusCode))
	return nil, b.classifyStatus(ctx, se)
}

// info is a GET answer's Info, as the SDK's GetObjectOutput gives it.
func (g *getter) info(resp *http.Response) backend.Info {
	h := resp.Header
	m := backend.Meta{ContentType: h.Get("Content-Type"), ContentEncoding: h.Get("Content-Encoding")}
	const metaPrefix = "X-Amz-Meta-"
	for k, v := range h {
		if len(k) > len(metaPrefix) && strings.EqualFold(k[:len(metaPrefix)], metaPrefix) && len(v) > 0 {
			if m.User == nil {
				m.User = make(map[string]string)
			}
			m.User[strings.ToLower(k[len(metaPrefix):])] = v[0]
		}
	}
	return backend.Info{Size: resp.ContentLength, ETag: unquoteETag(h.Get("Etag")), Meta: m}
}
