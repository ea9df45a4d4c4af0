package s3

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Options configure a Backend. OptionsFromConfig builds them from the
// command line; tests fill them in directly.
type Options struct {
	// Bucket holds every object; keys arrive complete (prefix included).
	Bucket string
	// BaseURL is the endpoint, e.g. "http://s3.amazonaws.com/" or
	// "http://127.0.0.1:7070/"; a path is allowed ("http://h/p/").
	BaseURL string
	// Region signs requests (aws4 scope); "" means us-east-1.
	Region string
	// Vhost puts the bucket in the host name (bucket.host) instead of the
	// path (host/bucket/key).
	Vhost bool

	Credentials Credentials

	// Headers sent on every PUT.
	AccessType   string // x-amz-acl; "" means private (always sent, as s3backer does)
	StorageClass string // x-amz-storage-class, if set
	SSE          string // x-amz-server-side-encryption: "AES256" or "aws:kms"
	SSEKeyID     string // x-amz-server-side-encryption-aws-kms-key-id (with aws:kms)

	// AcceptEncoding, if set, is sent on every GET (s3backer names the
	// encodings it can undo). Bodies always come back raw: neither Go nor
	// the SDK decodes them.
	AcceptEncoding string

	// SignPayload puts the SHA-256 of every PUT body into the request's
	// signature over plain HTTP, as s3backer does. Off, PUTs are signed with
	// UNSIGNED-PAYLOAD, as the SDK does over HTTPS: the body is then bound
	// to the signature through its Content-MD5 (a signed header the server
	// checks the body against) rather than its SHA-256, and hashing it
	// twice more (here and in the server) is saved. Over plain HTTP nothing
	// authenticates what a GET returns in any case; --encrypt does.
	SignPayload bool

	// HTTP.
	Timeout          time.Duration // whole request, body included; 0 means 30 s
	HTTP11           bool          // never use HTTP/2
	Insecure         bool          // skip TLS verification
	CACert           string        // PEM file of extra trusted CAs
	NoKeepAlive      bool          // a new connection per request (--noCurlCache)
	IPTOS            int           // IP_TOS of every socket; -1 or 0 means leave as is
	MaxUploadSpeed   int64         // bits per second per request; 0 = unlimited
	MaxDownloadSpeed int64         // bits per second per request; 0 = unlimited
	MaxConnsPerHost  int           // idle keep-alive connections kept; 0 means 128

	// DebugHTTP logs every request and response (secrets redacted) to
	// Logger at Info level.
	DebugHTTP bool
	Logger    *slog.Logger

	// SDKRequests sends block GETs and PUTs through the SDK's GetObject
	// and PutObject rather than the direct path (direct.go): for tests
	// that compare the two.
	SDKRequests bool
	// AppID is added to the User-Agent.
	AppID string

	// dial replaces the dialer in tests (to see vhost requests without DNS).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// CredentialsMode says where request signing credentials come from.
type CredentialsMode int

const (
	// CredentialsDefaultChain: the AWS SDK's default chain (environment,
	// shared config and profiles, SSO, web identity, container, IMDS). Used
	// when no s3backer credential flag is given and no access file exists.
	CredentialsDefaultChain CredentialsMode = iota
	// CredentialsStatic: AccessID and AccessKey.
	CredentialsStatic
	// CredentialsAnonymous: unsigned requests (--accessId="").
	CredentialsAnonymous
	// CredentialsEC2IAM: the instance's role credentials from IMDS.
	CredentialsEC2IAM
)

func (m CredentialsMode) String() string {
	switch m {
	case CredentialsDefaultChain:
		return "default chain"
	case CredentialsStatic:
		return "static"
	case CredentialsAnonymous:
		return "anonymous"
	case CredentialsEC2IAM:
		return "EC2 IAM role"
	}
	return "unknown"
}

// Credentials is the resolved credential source.
type Credentials struct {
	Mode      CredentialsMode
	AccessID  string // static
	AccessKey string // static

	// EC2IAM: Role "" means the instance's first (only) role; IMDSv2
	// refuses the IMDSv1 fallback; IMDSEndpoint overrides
	// http://169.254.169.254 (tests use a fake on 127.0.0.1).
	Role         string
	IMDSv2       bool
	IMDSEndpoint string
}
