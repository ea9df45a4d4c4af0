package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// StatusError is an HTTP error answer from the server, in one line.
type StatusError struct {
	Status  int
	Code    string // S3 error code ("SlowDown"), if the body had one
	Message string // S3 error message, if any
	// Region is the bucket's region when the answer names it (AWS sends
	// x-amz-bucket-region, or <Region> in the error, to a request signed
	// for or sent to another region).
	Region string
	hint   string
	err    error // the SDK's error, for errors.As
}

func (e *StatusError) Error() string {
	var b strings.Builder
	if e.hint != "" {
		b.WriteString(e.hint)
		b.WriteString(" (")
	}
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" && e.Message != e.Code {
		b.WriteString(": " + e.Message)
	}
	if e.hint != "" {
		b.WriteString(")")
	}
	return b.String()
}

func (e *StatusError) Unwrap() error { return e.err }

// Transient reports whether retrying may succeed: 5xx but 501 (Not
// Implemented: the server lacks the operation), 408, 429, a 307
// (S3 redirects there while a new bucket's DNS settles), and a 2xx whose
// body could not be read — the connection broke mid-answer (a truncated
// listing, or the SDK closing the connection under a good answer, its
// issue #2737). Every request s3backer makes is idempotent, so a retry is
// safe.
func (e *StatusError) Transient() bool {
	switch {
	case e.Status >= 500 && e.Status != http.StatusNotImplemented, e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests,
		e.Status == http.StatusTemporaryRedirect, e.Status >= 200 && e.Status < 300:
		return true
	}
	return false
}

// classify turns an SDK error into what the layers above understand:
// backend.ErrNotFound (404), ErrNotModified (304), ErrPrecondition (412),
// a *backend.Permanent for what no retry can fix (other 4xx but 408 and
// 429, other 3xx, TLS verification, missing credentials), or a plain
// error for the rest (5xx, 408, 429, timeouts, connection errors). The
// caller adds the operation and key.
func (b *Backend) classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller gave up; say so rather than how the request died.
		return ctxErr
	}

	// Before looking for an HTTP status: a credentials failure may carry
	// the metadata service's 404, which must not read as a missing object.
	var ce *credentialsErr
	if errors.As(err, &ce) {
		if credentialsTransient(ce.err) {
			return ce
		}
		return &backend.Permanent{Err: ce}
	}

	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Response != nil && re.HTTPStatusCode() > 0 {
		se := &StatusError{Status: re.HTTPStatusCode(), Region: re.Response.Header.Get("X-Amz-Bucket-Region"), err: err}
		var api smithy.APIError
		if errors.As(err, &api) {
			se.Code, se.Message = api.ErrorCode(), api.ErrorMessage()
		}
		return b.classifyStatus(ctx, se)
	}

	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	if errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) {
		return &backend.Permanent{Err: fmt.Errorf("TLS certificate of %s not trusted (see --cacert, --insecure): %w",
			b.opt.BaseURL, innermost(err))}
	}

	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from %s within %v (--timeout): %w", b.opt.BaseURL, b.timeout, errTimeout)
	}

	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("cannot reach %s: %w", b.opt.BaseURL, innermost(op))
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Errorf("cannot reach %s: %w", b.opt.BaseURL, dns)
	}
	return err
}

// classifyStatus is classify for an error answer of the server.
func (b *Backend) classifyStatus(ctx context.Context, se *StatusError) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	switch se.Status {
	case http.StatusNotFound:
		if se.Code == "NoSuchBucket" {
			se.hint = fmt.Sprintf("bucket %q does not exist at %s", b.opt.Bucket, b.opt.BaseURL)
			return &backend.Permanent{Err: se}
		}
		return backend.ErrNotFound
	case http.StatusNotModified:
		return backend.ErrNotModified
	case http.StatusPreconditionFailed:
		return backend.ErrPrecondition
	case http.StatusForbidden, http.StatusUnauthorized:
		se.hint = "access denied: the credentials are wrong or lack permission for bucket " +
			fmt.Sprintf("%q", b.opt.Bucket) + " (check --accessId/--accessKey/--accessFile)"
		switch se.Code {
		case "SignatureDoesNotMatch", "InvalidAccessKeyId":
			se.hint = "wrong credentials: the server rejects the access key ID or secret key" +
				" (check --accessId/--accessKey/--accessFile)"
		case "RequestTimeTooSkewed":
			// Signatures carry the time; S3 refuses one 15 minutes off.
			se.hint = "this machine's clock is too far from the server's: set it right (NTP)"
		case "InvalidObjectState":
			// --storageClass=GLACIER or DEEP_ARCHIVE, a lifecycle rule, or
			// an Intelligent-Tiering archive tier.
			se.hint = "the object is archived (a Glacier storage class or archive tier): it must be restored before it can be read"
		}
	case http.StatusMovedPermanently, http.StatusFound, http.StatusPermanentRedirect:
		se.hint = b.regionHint(se, "the bucket is elsewhere: check --region, --baseURL and --vhost")
	case http.StatusBadRequest:
		if se.Code == "AuthorizationHeaderMalformed" {
			se.hint = b.regionHint(se, "wrong region: check --region")
		}
	}
	if se.Transient() {
		return se
	}
	return &backend.Permanent{Err: se}
}

// bulkDeleteMissing reports whether a DeleteObjects answer says the store
// does not have it: 501 or NotImplemented (Google Cloud Storage until
// 2026: "POST ?delete is not implemented for objects"), 405, or the 400
// InvalidArgument older GCS gave ("Cannot create buckets using a POST").
func bulkDeleteMissing(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	return se.Status == http.StatusNotImplemented || se.Status == http.StatusMethodNotAllowed ||
		se.Code == "NotImplemented" || se.Code == "MethodNotAllowed" ||
		se.Status == http.StatusBadRequest && se.Code == "InvalidArgument"
}

// regionHint names the bucket's region when the answer did, else it is
// otherwise. The SDK's errors keep no <Region>, but AWS's message says it
// too: "… the region 'us-east-1' is wrong; expecting 'eu-west-1'".
func (b *Backend) regionHint(se *StatusError, otherwise string) string {
	region := se.Region
	if m := expectingRegion.FindStringSubmatch(se.Message); region == "" && m != nil {
		region = m[1]
	}
	if region == "" {
		return otherwise
	}
	return fmt.Sprintf("bucket %q is in region %s: use --region=%s", b.opt.Bucket, region, region)
}

var expectingRegion = regexp.MustCompile(`; expecting '([a-z0-9-]+)'`)

// errTimeout is what a request that ran out of time wraps.
var errTimeout = errors.New("timed out")

// credentialsTransient: the credential source (IMDS, STS, SSO) could not
// be reached or was busy, rather than refusing.
func credentialsTransient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Response != nil {
		return (&StatusError{Status: re.HTTPStatusCode()}).Transient()
	}
	return false
}

// innermost returns the most specific cause worth showing: the errno of a
// system call ("connection refused") rather than the layers around it.
func innermost(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}
