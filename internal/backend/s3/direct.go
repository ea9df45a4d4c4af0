package s3

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
	"github.com/s3backer-go/s3backer/internal/md5sum"
)

// direct sends a block's GET and PUT straight through the shared HTTP
// client, signed by the SDK's SigV4 signer, instead of through the SDK's
// GetObject and PutObject: the SDK builds and runs a stack of some forty
// middlewares for every request (endpoint rules, user agent, invocation
// IDs, response deserialisation), about a sixth of our CPU in a cold
// sequential read and an eighth in a sequential write here (perf), for
// requests whose URL and headers never change but for the key. Everything
// else (transport, TLS, proxies, --debug-http, rate limits, timeouts,
// error classification) is shared with the SDK path, which the rarer
// requests (HEAD, DELETE, listings) keep.
type direct struct {
	hc     *http.Client
	creds  aws.CredentialsProvider // nil: anonymous, unsigned
	signer *v4.Signer
	region string
	// prefix is the URL up to the key ("http://host/bucket/" or
	// "http://bucket.host/"), escaped.
	prefix    string
	userAgent string
	// signPayload: PUT bodies are signed by their SHA-256, as the SDK
	// does over plain HTTP when Options.SignPayload asks for it.
	signPayload    bool
	acceptEncoding string
	// Headers of every PUT: ACL, storage class, SSE.
	putHeaders http.Header
}

// expectContinueBytes: larger PUT bodies wait for the server's 100
// Continue before they are sent, as the SDK's (a refused PUT of a large
// block then costs no upload).
const expectContinueBytes = 2 << 20

// emptySHA256 is the SHA-256 of an empty payload, which a GET signs.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// dnsBucket: bucket names the SDK puts in the host name as they are.
var dnsBucket = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

// newDirect returns the direct path for o, with the (cached) credentials
// the SDK client signs with, or nil where the URL would be the SDK
// endpoint rules' to decide (a virtual-host bucket name that is not a
// plain DNS label), so that the SDK serves those requests too.
func newDirect(o *Options, hc *http.Client, creds aws.CredentialsProvider) *direct {
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
	d := &direct{
		hc:             hc,
		region:         o.Region,
		prefix:         prefix,
		userAgent:      cmp.Or(o.AppID, "s3backer-go"),
		signPayload:    o.SignPayload && u.Scheme == "http",
		acceptEncoding: o.AcceptEncoding,
		putHeaders:     http.Header{"X-Amz-Acl": {o.AccessType}},
	}
	if o.StorageClass != "" {
		d.putHeaders.Set("X-Amz-Storage-Class", o.StorageClass)
	}
	if o.SSE != "" {
		d.putHeaders.Set("X-Amz-Server-Side-Encryption", o.SSE)
		if o.SSEKeyID != "" {
			d.putHeaders.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", o.SSEKeyID)
		}
	}
	if _, anon := creds.(aws.AnonymousCredentials); !anon {
		d.creds = creds
		// As the SDK signs for S3: the path is escaped once, not twice.
		d.signer = v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true })
	}
	return d
}

// get sends the GET of key, as Backend.open says.
func (d *direct) get(ctx context.Context, b *Backend, key string, opt backend.GetOptions) (io.ReadCloser, backend.Info, error) {
	req, err := d.request(ctx, http.MethodGet, key, nil)
	if err != nil {
		return nil, backend.Info{}, err
	}
	if d.acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", d.acceptEncoding)
	}
	if opt.IfNoneMatch != "" {
		req.Header.Set("If-None-Match", quoteETag(opt.IfNoneMatch))
	}
	if opt.IfMatch != "" {
		req.Header.Set("If-Match", quoteETag(opt.IfMatch))
	}
	resp, err := d.do(ctx, b, req, emptySHA256)
	if err != nil {
		return nil, backend.Info{}, err
	}
	return resp.Body, info(resp), nil
}

// put stores body under key, as Backend.put says, and returns its ETag.
func (d *direct) put(ctx context.Context, b *Backend, key string, body []byte, m backend.Meta, acl bool) (string, error) {
	req, err := d.request(ctx, http.MethodPut, key, body)
	if err != nil {
		return "", err
	}
	for k, v := range d.putHeaders {
		req.Header[k] = v
	}
	if !acl {
		req.Header.Del("X-Amz-Acl")
	}
	sum := md5sum.Sum(body)
	req.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	if m.ContentType != "" {
		req.Header.Set("Content-Type", m.ContentType)
	}
	if m.ContentEncoding != "" {
		req.Header.Set("Content-Encoding", m.ContentEncoding)
	}
	for k, v := range m.User {
		req.Header.Set("X-Amz-Meta-"+strings.ToLower(k), v)
	}
	if len(body) >= expectContinueBytes {
		req.Header.Set("Expect", "100-continue")
	}
	payload := "UNSIGNED-PAYLOAD"
	if d.signPayload {
		h := sha256.Sum256(body)
		payload = hex.EncodeToString(h[:])
	}
	resp, err := d.do(ctx, b, req, payload)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body) // let the connection be reused
	return unquoteETag(resp.Header.Get("Etag")), nil
}

// request starts a request for key with the headers every one carries.
func (d *direct) request(ctx context.Context, method, key string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body) // sets ContentLength and GetBody
	}
	req, err := http.NewRequestWithContext(ctx, method, d.prefix+httpbinding.EscapePath(key, false), r)
	if err != nil {
		return nil, &backend.Permanent{Err: err}
	}
	req.Header.Set("User-Agent", d.userAgent)
	return req, nil
}

// do signs req (payload: the value of x-amz-content-sha256) and sends it;
// it returns the answer with a 2xx status, or what classify makes of an
// error answer.
func (d *direct) do(ctx context.Context, b *Backend, req *http.Request, payload string) (*http.Response, error) {
	req.Header.Set("X-Amz-Content-Sha256", payload)
	if d.creds != nil {
		cr, err := d.creds.Retrieve(ctx)
		if err != nil {
			return nil, b.classify(ctx, err)
		}
		if err := d.signer.SignHTTP(ctx, cr, req, payload, "s3", d.region, time.Now().UTC()); err != nil {
			return nil, &backend.Permanent{Err: fmt.Errorf("sign: %w", err)}
		}
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, b.classify(ctx, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	se := &StatusError{Status: resp.StatusCode, Region: resp.Header.Get("X-Amz-Bucket-Region"), err: errors.New(http.StatusText(resp.StatusCode))}
	// The error document, if any: <Error><Code>…</Code><Message>…</Message>,
	// and <Region> when the request went to the wrong one.
	var doc struct{ Code, Message, Region string }
	if xml.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&doc) == nil {
		se.Code, se.Message = doc.Code, doc.Message
		if se.Region == "" {
			se.Region = doc.Region
		}
	}
	if se.Code == "" && resp.StatusCode == http.StatusNotFound {
		se.Code = "NotFound"
	}
	return nil, b.classifyStatus(ctx, se)
}

// info is a GET answer's Info, as the SDK's GetObjectOutput gives it.
func info(resp *http.Response) backend.Info {
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
	return backend.Info{
		Size:       resp.ContentLength,
		ETag:       unquoteETag(h.Get("Etag")),
		OpaqueETag: opaqueETag(h.Get("X-Amz-Server-Side-Encryption"), h.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm")),
		Meta:       m,
	}
}
