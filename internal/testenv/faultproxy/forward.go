package faultproxy

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// hopByHop are the headers that belong to one connection, not the request
// (RFC 9110 §7.6.1); signing them would make no sense, so dropping them is
// safe.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func dropHopByHop(h http.Header) {
	for _, c := range h.Values("Connection") {
		for _, name := range strings.Split(c, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// forward sends r upstream as the client sent it and returns the answer.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Close = false
	out.TransferEncoding = nil // the transport picks framing from ContentLength
	u := *p.upstream
	u.Path, u.RawPath, u.RawQuery, u.ForceQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.URL.ForceQuery
	if path, ok := rawPath(r.RequestURI); ok {
		// The request target byte for byte: SigV4 signs the path as sent.
		u.Opaque, u.Path, u.RawPath = path, "", ""
	}
	out.URL = &u
	out.Host = r.Host // signed as the client addressed it: the proxy
	dropHopByHop(out.Header)
	if _, ok := r.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // keep Go from adding one
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.RequestURI, err)
	}
	return resp, nil
}

// rawPath returns the path part of an origin-form request target, unless
// it begins with "//", which url.URL would take for a host.
func rawPath(requestURI string) (string, bool) {
	path, _, _ := strings.Cut(requestURI, "?")
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return "", false
	}
	return path, true
}

// copyHeader sends resp's status line headers to w, changing nothing.
func copyHeader(w http.ResponseWriter, resp *http.Response) {
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	dropHopByHop(h)
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // keep net/http from sniffing one
	}
	if _, ok := h["Content-Length"]; !ok && resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
}

// copyResponse passes resp back to the client as it streams in.
func copyResponse(w http.ResponseWriter, resp *http.Response) {
	copyHeader(w, resp)
	w.WriteHeader(resp.StatusCode)
	// An error here is the client or upstream going away mid-body; the
	// client sees a short body either way.
	_, _ = io.Copy(w, resp.Body)
}
