// Package faultproxy is a reverse HTTP proxy for tests that sits between an
// S3 client and a real S3 server (versitygw), injects the failures real
// networks and stores produce, and counts requests.
//
// Requests are forwarded as the client sent them: method, raw path and
// query, Host and every end-to-end header, so SigV4 signatures made for the
// proxy's address still verify upstream. Only hop-by-hop headers
// (Connection and the like) are dropped; nothing is added: no
// X-Forwarded-For, no Accept-Encoding, no User-Agent, and responses are
// passed back undecoded.
//
// A client whose keep-alive connection is reset may replay an idempotent
// request by itself (Go's http.Transport does so for GET and HEAD); the
// proxy then counts, and draws a fault for, each request it receives.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is the proxy's base address, http://127.0.0.1:PORT.
	URL string

	upstream  *url.URL
	transport *http.Transport
	srv       *http.Server
	stop      context.CancelFunc // ends every request in flight

	// handlers counts running handlers; closed stops new ones from
	// joining once close waits.
	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup

	faults  atomic.Pointer[faultState]
	headers atomic.Pointer[func(Kind, http.Header)]
	counts  counter
	reqID   atomic.Int64

	// stallEnded, if set (by tests), is told how each stall ended.
	stallEnded func(clientGaveUp bool)
}

// Start runs a proxy to upstream (http://host:port, no path) on a loopback
// port, with no faults, until t's cleanup.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := start(upstream)
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	t.Cleanup(p.close)
	return p
}

func start(upstream string) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", upstream, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("upstream %q: want http(s)://host:port", upstream)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	base, stop := context.WithCancel(context.Background())
	p := &Proxy{
		URL:      "http://" + ln.Addr().String(),
		upstream: &url.URL{Scheme: u.Scheme, Host: u.Host},
		transport: &http.Transport{
			Proxy:               nil, // never an HTTP(S)_PROXY from the environment
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
		stop: stop,
	}
	p.faults.Store(newFaultState(Faults{}))
	p.counts.reset()
	p.srv = &http.Server{
		Handler:     p,
		BaseContext: func(net.Listener) context.Context { return base },
	}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(fmt.Sprintf("faultproxy: serve: %v", err))
		}
	}()
	return p, nil
}

// SetResponseHeaders has f change the headers of every answer from
// upstream before they are passed on (nil: none), as a store that differs
// from versitygw would answer: other ETags, encryption headers.
func (p *Proxy) SetResponseHeaders(f func(kind Kind, h http.Header)) {
	if f == nil {
		p.headers.Store(nil)
		return
	}
	p.headers.Store(&f)
}

// close ends stalls and requests in flight, then waits for their handlers.
func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stop()
	_ = p.srv.Close()
	p.handlers.Wait()
	p.transport.CloseIdleConnections()
}

// ServeHTTP counts a request, draws its fault and acts on it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.handlers.Add(1)
	p.mu.Unlock()
	defer p.handlers.Done()

	kind := Classify(r)
	p.counts.received(r.Method, kind)
	fault, stallFor := p.draw(kind)

	switch fault {
	case SlowDown, TooManyRequests, InternalError, NotImplemented:
		p.counts.injected(fault)
		p.writeError(w, r, fault)
		return
	case ResetBefore:
		p.counts.injected(fault)
		reset(w)
		return
	case Stall:
		p.counts.injected(fault)
		if !p.stall(r, stallFor) {
			return
		}
	}

	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, fmt.Sprintf("faultproxy: upstream: %v", err), http.StatusBadGateway)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	p.counts.forwarded(r.Method, kind)

	if f := p.headers.Load(); f != nil {
		(*f)(kind, resp.Header)
	}
	switch fault {
	case ResetAfter:
		p.counts.injected(fault)
		reset(w)
		return
	case Truncate:
		if p.truncate(w, r, resp) {
			return
		}
	}
	copyResponse(w, resp)
}
