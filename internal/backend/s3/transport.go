package s3

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

const (
	defaultTimeout  = 30 * time.Second
	defaultMaxConns = 128
)

// newHTTPClient builds the one client every request of a Backend shares:
// keep-alive connections enough for the worker pools, the whole-request
// timeout, TLS and HTTP/2 choices, then (outermost first) debug logging
// and rate limits around the transport.
func newHTTPClient(o *Options, timeout time.Duration) (*http.Client, error) {
	maxConns := o.MaxConnsPerHost
	if maxConns <= 0 {
		maxConns = defaultMaxConns
	}
	dialer := &net.Dialer{
		Timeout: timeout,
		// curl's keep-alive probes as s3backer sets them.
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 200 * time.Second, Interval: 60 * time.Second, Count: 9},
	}
	if o.IPTOS > 0 {
		dialer.Control = ipTOSControl(o.IPTOS)
	}
	tlsConf := &tls.Config{InsecureSkipVerify: o.Insecure} //nolint:gosec // --insecure asks for it
	if o.CACert != "" {
		pem, err := os.ReadFile(o.CACert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert=%s: no PEM certificate in the file", o.CACert)
		}
		tlsConf.RootCAs = pool
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   timeout,
		MaxIdleConns:          maxConns,
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableKeepAlives:     o.NoKeepAlive,
		// Objects carry Content-Encoding: deflate etc. for s3backer's
		// codec; the body must arrive exactly as stored.
		DisableCompression: true,
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	if !o.HTTP11 {
		protos.SetHTTP2(true)
	}
	t.Protocols = &protos

	if o.dial != nil {
		t.DialContext = o.dial
	}
	var rt http.RoundTripper = t
	if o.MaxUploadSpeed > 0 || o.MaxDownloadSpeed > 0 {
		rt = &rateLimitTransport{next: rt, up: o.MaxUploadSpeed / 8, down: o.MaxDownloadSpeed / 8}
	}
	if o.DebugHTTP && o.Logger != nil {
		rt = &debugTransport{next: rt, log: o.Logger}
	}
	return &http.Client{Transport: rt, Timeout: timeout}, nil
}
