// Package s3 is the backend.Backend of S3 and S3-compatible services, on
// the AWS SDK for Go v2. It moves opaque objects and classifies failures;
// it neither retries (the retry decorator does) nor knows what is in the
// objects (the codec does).
package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3backer-go/s3backer/internal/backend"
	"github.com/s3backer-go/s3backer/internal/md5sum"
)

// maxDeleteKeys is S3's limit of keys in one DeleteObjects request.
const maxDeleteKeys = 1000

// Backend is a bucket on an S3 service. It is safe for concurrent use.
type Backend struct {
	opt     Options
	client  *awss3.Client
	timeout time.Duration
	acl     types.ObjectCannedACL
	getOpts []func(*awss3.Options)
	putOpts []func(*awss3.Options)
	direct  *direct // GETs and PUTs without the SDK; nil: through the SDK
	// noACL: the bucket refused the x-amz-acl of a PUT (its ACLs are
	// disabled); PUTs go without it from then on.
	noACL atomic.Bool
}

var _ backend.Backend = (*Backend)(nil)

// New returns a Backend for o. It makes no request: credentials from IMDS
// or the default chain are fetched by the first request, whose error says
// so.
func New(ctx context.Context, o Options) (*Backend, error) {
	if o.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3: invalid base URL %q", o.BaseURL)
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccessType == "" {
		o.AccessType = string(types.ObjectCannedACLPrivate)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	hc, err := newHTTPClient(&o, timeout)
	if err != nil {
		return nil, err
	}
	creds, err := o.Credentials.provider(ctx, o.Region)
	if err != nil {
		return nil, err
	}
	b := &Backend{opt: o, timeout: timeout, acl: types.ObjectCannedACL(o.AccessType)}
	b.client = awss3.New(awss3.Options{
		Region:       o.Region,
		Credentials:  creds,
		HTTPClient:   hc,
		BaseEndpoint: aws.String(o.BaseURL),
		UsePathStyle: !o.Vhost,
		// Retrying is the retry decorator's job, with s3backer's backoff.
		Retryer: aws.NopRetryer{},
		// S3-compatible servers reject the SDK's newer default checksums.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		AppID:                      o.AppID,
		Logger:                     logging.Nop{},
		DisableLogOutputChecksumValidationSkipped: true,
	})
	if o.AcceptEncoding != "" {
		b.getOpts = append(b.getOpts, withHeader("Accept-Encoding", o.AcceptEncoding))
	}
	if !o.SDKRequests {
		b.direct = newDirect(&o, hc, b.client.Options().Credentials)
	}
	if !o.SignPayload {
		// The SDK signs a PUT body's SHA-256 over plain HTTP (over HTTPS
		// it already sends UNSIGNED-PAYLOAD): a fifth of a write's CPU
		// here, and as much again in a server that checks it. The body
		// stays covered: Content-MD5 is a signed header, and the server
		// refuses a body that does not match it.
		b.putOpts = append(b.putOpts, withAPIOption(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	}
	return b, nil
}

// Get reads key into buf without an intermediate copy.
func (b *Backend) Get(ctx context.Context, key string, buf []byte, opt backend.GetOptions) (int, backend.Info, error) {
	body, info, err := b.open(ctx, key, opt)
	if err != nil {
		return 0, backend.Info{}, fmt.Errorf("get %s: %w", key, err)
	}
	defer body.Close()
	if info.Size > int64(len(buf)) {
		return 0, info, fmt.Errorf("get %s: %d bytes: %w", key, info.Size, backend.ErrTooLarge)
	}
	n, err := io.ReadFull(body, buf)
	switch {
	case err == nil:
		// buf is full: the object fits only if nothing follows.
		var one [1]byte
		if m, _ := io.ReadFull(body, one[:]); m > 0 {
			return 0, info, fmt.Errorf("get %s: more than %d bytes: %w", key, len(buf), backend.ErrTooLarge)
		}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		// Shorter than buf: the usual case.
	default:
		return 0, info, fmt.Errorf("get %s: reading body: %w", key, b.classify(ctx, err))
	}
	if info.Size >= 0 && int64(n) != info.Size {
		return 0, info, fmt.Errorf("get %s: body of %d bytes, Content-Length %d", key, n, info.Size)
	}
	info.Size = int64(n)
	return n, info, nil
}

// open sends the GET of key and returns the body to read and the Info of
// the answer (Size -1: no Content-Length), or the classified error.
func (b *Backend) open(ctx context.Context, key string, opt backend.GetOptions) (io.ReadCloser, backend.Info, error) {
	if b.direct != nil {
		return b.direct.get(ctx, b, key, opt)
	}
	in := &awss3.GetObjectInput{Bucket: &b.opt.Bucket, Key: &key}
	if opt.IfNoneMatch != "" {
		in.IfNoneMatch = aws.String(quoteETag(opt.IfNoneMatch))
	}
	if opt.IfMatch != "" {
		in.IfMatch = aws.String(quoteETag(opt.IfMatch))
	}
	out, err := b.client.GetObject(ctx, in, b.getOpts...)
	if err != nil {
		return nil, backend.Info{}, b.classify(ctx, err)
	}
	info := backend.Info{
		Size:       -1,
		ETag:       unquoteETag(aws.ToString(out.ETag)),
		OpaqueETag: opaqueETag(string(out.ServerSideEncryption), aws.ToString(out.SSECustomerAlgorithm)),
		Meta:       meta(out.ContentType, out.ContentEncoding, out.Metadata),
	}
	if out.ContentLength != nil {
		info.Size = *out.ContentLength
	}
	return out.Body, info, nil
}

// Head returns key's Info.
func (b *Backend) Head(ctx context.Context, key string) (backend.Info, error) {
	out, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &b.opt.Bucket, Key: &key})
	if err != nil {
		return backend.Info{}, fmt.Errorf("head %s: %w", key, b.classify(ctx, err))
	}
	return backend.Info{
		Size:       aws.ToInt64(out.ContentLength),
		ETag:       unquoteETag(aws.ToString(out.ETag)),
		OpaqueETag: opaqueETag(string(out.ServerSideEncryption), aws.ToString(out.SSECustomerAlgorithm)),
		Meta:       meta(out.ContentType, out.ContentEncoding, out.Metadata),
	}, nil
}

// Put stores body with Content-MD5 and s3backer's per-bucket headers.
//
// A bucket whose ACLs are disabled (S3 Object Ownership "bucket owner
// enforced", the default for new AWS buckets) may refuse a PUT that names
// an ACL. With --accessType=private the header changes nothing there: the
// PUT is sent again without it, and so is every later one. Any other ACL
// cannot be had on such a bucket, and the error says so.
func (b *Backend) Put(ctx context.Context, key string, body []byte, m backend.Meta) (string, error) {
	// While this upload is under way, other PUT bodies may wait to be
	// hashed with this one's next; with no other, ours is hashed at once.
	defer md5sum.Sending()()
	acl := !b.noACL.Load()
	etag, err := b.put(ctx, key, body, m, acl)
	if acl && aclsDisabled(err) {
		if b.acl != types.ObjectCannedACLPrivate && b.acl != types.ObjectCannedACLBucketOwnerFullControl {
			return "", fmt.Errorf("put %s: %w", key, &backend.Permanent{Err: fmt.Errorf(
				"the bucket does not allow ACLs (S3 Object Ownership: bucket owner enforced), so --accessType=%s cannot apply; use --accessType=private (%w)",
				b.acl, err)})
		}
		if b.noACL.CompareAndSwap(false, true) && b.opt.Logger != nil {
			b.opt.Logger.Warn("the bucket does not allow ACLs (S3 Object Ownership: bucket owner enforced): PUTs go without x-amz-acl, which changes nothing for a private object",
				"bucket", b.opt.Bucket)
		}
		etag, err = b.put(ctx, key, body, m, false)
	}
	if err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	return etag, nil
}

// aclsDisabled reports a PUT refused for the ACL it named.
func aclsDisabled(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == "AccessControlListNotSupported"
}

// put sends one PUT, with the x-amz-acl header if acl, and returns the
// classified error.
func (b *Backend) put(ctx context.Context, key string, body []byte, m backend.Meta, acl bool) (string, error) {
	if b.direct != nil {
		return b.direct.put(ctx, b, key, body, m, acl)
	}
	sum := md5sum.Sum(body)
	in := &awss3.PutObjectInput{
		Bucket:        &b.opt.Bucket,
		Key:           &key,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
	if acl {
		in.ACL = b.acl
	}
	if m.ContentType != "" {
		in.ContentType = &m.ContentType
	}
	if m.ContentEncoding != "" {
		in.ContentEncoding = &m.ContentEncoding
	}
	if len(m.User) > 0 {
		in.Metadata = make(map[string]string, len(m.User))
		for k, v := range m.User {
			in.Metadata[strings.ToLower(k)] = v
		}
	}
	if b.opt.StorageClass != "" {
		in.StorageClass = types.StorageClass(b.opt.StorageClass)
	}
	if b.opt.SSE != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(b.opt.SSE)
		if b.opt.SSEKeyID != "" {
			in.SSEKMSKeyId = &b.opt.SSEKeyID
		}
	}
	out, err := b.client.PutObject(ctx, in, b.putOpts...)
	if err != nil {
		return "", b.classify(ctx, err)
	}
	return unquoteETag(aws.ToString(out.ETag)), nil
}

// Delete removes key; a 404 counts as success.
func (b *Backend) Delete(ctx context.Context, key string) error {
	_, err := b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &b.opt.Bucket, Key: &key})
	if err != nil {
		if err := b.classify(ctx, err); !errors.Is(err, backend.ErrNotFound) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
	}
	return nil
}

// DeleteMany removes keys with DeleteObjects, 1000 at a time, in quiet
// mode: the answer lists only failures, and any failure is an error.
func (b *Backend) DeleteMany(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		batch := keys[:min(len(keys), maxDeleteKeys)]
		keys = keys[len(batch):]
		objs := make([]types.ObjectIdentifier, len(batch))
		for i := range batch {
			objs[i].Key = &batch[i]
		}
		out, err := b.client.DeleteObjects(ctx, &awss3.DeleteObjectsInput{
			Bucket: &b.opt.Bucket,
			Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
		}, withAPIOption(withContentMD5))
		if err != nil {
			err = b.classify(ctx, err)
			if bulkDeleteMissing(err) {
				err = &backend.Permanent{Err: fmt.Errorf("%w: the store has no multi-object delete (%w)", errors.ErrUnsupported, err)}
			}
			return fmt.Errorf("delete %d keys from %s: %w", len(batch), batch[0], err)
		}
		if err := deleteErrors(out.Errors); err != nil {
			return err
		}
	}
	return nil
}

// deleteErrors reports DeleteObjects' per-key failures in one line. A
// missing key is not one (S3 reports it deleted; some servers say
// NoSuchKey). AccessDenied cannot heal by itself; the rest may.
func deleteErrors(errs []types.Error) error {
	var first types.Error
	n, permanent := 0, false
	for _, e := range errs {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		if n == 0 {
			first = e
		}
		n++
		permanent = permanent || aws.ToString(e.Code) == "AccessDenied"
	}
	if n == 0 {
		return nil
	}
	err := fmt.Errorf("delete %s: %s: %s (%d of the batch failed)",
		aws.ToString(first.Key), aws.ToString(first.Code), aws.ToString(first.Message), n)
	if permanent {
		return &backend.Permanent{Err: err}
	}
	return err
}

// List calls fn with each key under prefix after startAfter, in order,
// following continuation tokens.
func (b *Backend) List(ctx context.Context, prefix, startAfter string, fn func(key string) error) error {
	in := &awss3.ListObjectsV2Input{Bucket: &b.opt.Bucket, MaxKeys: aws.Int32(maxDeleteKeys)}
	if prefix != "" {
		in.Prefix = &prefix
	}
	if startAfter != "" {
		in.StartAfter = &startAfter
	}
	last := startAfter // the greatest key listed so far
	page := func(contents []types.Object) error {
		for _, o := range contents {
			k := aws.ToString(o.Key)
			if k <= last {
				// A page that does not move on would list it forever.
				return fmt.Errorf("list %q: the server listed %q after %q", prefix, k, last)
			}
			last = k
			if err := fn(k); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		out, err := b.client.ListObjectsV2(ctx, in)
		if err != nil {
			return fmt.Errorf("list %q after %q: %w", prefix, startAfter, b.classify(ctx, err))
		}
		if out.KeyCount == nil || aws.ToBool(out.IsTruncated) && aws.ToString(out.NextContinuationToken) == "" {
			// A server that knows only ListObjects (v1) answers v2 as v1:
			// no KeyCount, start-after ignored, truncated without a token.
			// Stopping at the end of this page would call every block after
			// it absent; list in v1 instead, as s3backer does, from the
			// last key taken.
			return stopOK(b.listV1(ctx, prefix, last, page))
		}
		if err := page(out.Contents); err != nil {
			return stopOK(err)
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// listV1 lists keys under prefix after marker with ListObjects (v1),
// passing each page to page.
func (b *Backend) listV1(ctx context.Context, prefix, marker string, page func([]types.Object) error) error {
	in := &awss3.ListObjectsInput{Bucket: &b.opt.Bucket, MaxKeys: aws.Int32(maxDeleteKeys)}
	if prefix != "" {
		in.Prefix = &prefix
	}
	for {
		in.Marker = &marker
		out, err := b.client.ListObjects(ctx, in)
		if err != nil {
			return fmt.Errorf("list %q after %q: %w", prefix, marker, b.classify(ctx, err))
		}
		if len(out.Contents) == 0 && aws.ToBool(out.IsTruncated) {
			return fmt.Errorf("list %q after %q: the server sent an empty page and more to come", prefix, marker)
		}
		if err := page(out.Contents); err != nil {
			return err
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		marker = aws.ToString(out.Contents[len(out.Contents)-1].Key)
	}
}

// stopOK is err, but nil for the ErrStop with which a List callback ends
// the listing.
func stopOK(err error) error {
	if errors.Is(err, backend.ErrStop) {
		return nil
	}
	return err
}

// CheckBucket asks whether the bucket exists and the credentials may use
// it (HEAD bucket). A HEAD of a missing object cannot tell a missing bucket
// from a missing key; this can, for a clear error at start.
func (b *Backend) CheckBucket(ctx context.Context) error {
	_, err := b.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &b.opt.Bucket})
	if err == nil {
		return nil
	}
	err = b.classify(ctx, err)
	if errors.Is(err, backend.ErrNotFound) {
		return &backend.Permanent{Err: fmt.Errorf("bucket %q does not exist at %s", b.opt.Bucket, b.opt.BaseURL)}
	}
	return fmt.Errorf("head bucket %s: %w", b.opt.Bucket, err)
}

func meta(contentType, contentEncoding *string, user map[string]string) backend.Meta {
	m := backend.Meta{ContentType: aws.ToString(contentType), ContentEncoding: aws.ToString(contentEncoding)}
	if len(user) > 0 {
		m.User = make(map[string]string, len(user))
		for k, v := range user {
			m.User[strings.ToLower(k)] = v
		}
	}
	return m
}

// opaqueETag reports whether an object's answer, by its
// x-amz-server-side-encryption and …-customer-algorithm headers, says its
// ETag is not the MD5 of its body: S3 makes it something else for objects
// under SSE-KMS (and DSSE-KMS) or SSE-C, whether a PUT asked for it
// (--sse=aws:kms) or the bucket's default encryption applied it. SSE-S3
// (AES256) ETags are MD5s.
func opaqueETag(sse, customerAlgorithm string) bool {
	return strings.HasPrefix(sse, "aws:kms") || customerAlgorithm != ""
}

func unquoteETag(s string) string {
	s = strings.TrimPrefix(s, "W/")
	return strings.Trim(s, `"`)
}

// quoteETag makes an entity tag of a bare ETag, as If-Match needs.
func quoteETag(s string) string {
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "W/") || s == "*" {
		return s
	}
	return `"` + s + `"`
}

func withAPIOption(fn func(*middleware.Stack) error) func(*awss3.Options) {
	return func(o *awss3.Options) { o.APIOptions = append(o.APIOptions, fn) }
}

// withHeader sets a header on one request before it is signed.
func withHeader(name, value string) func(*awss3.Options) {
	return withAPIOption(func(stack *middleware.Stack) error {
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("s3backer:"+name,
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Set(name, value)
				}
				return next.HandleFinalize(ctx, in)
			}), "Signing", middleware.Before)
	})
}
