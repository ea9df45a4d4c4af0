package faultproxy

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// s3Errors are the status, S3 error code and message of each error fault,
// as AWS sends them.
var s3Errors = map[Fault]struct {
	status        int
	code, message string
}{
	SlowDown:        {http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."},
	TooManyRequests: {http.StatusTooManyRequests, "TooManyRequests", "Too many requests, please slow down."},
	InternalError:   {http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."},
	NotImplemented:  {http.StatusNotImplemented, "NotImplemented", "A header or query you provided requested a function that is not implemented."},
}

// writeError answers r with an S3 XML error, as a throttled or failing
// server would.
func (p *Proxy) writeError(w http.ResponseWriter, r *http.Request, f Fault) {
	e := s3Errors[f]
	id := fmt.Sprintf("FAULTPROXY%08d", p.reqID.Add(1))
	var body bytes.Buffer
	body.WriteString(xml.Header)
	body.WriteString("<Error><Code>" + e.code + "</Code><Message>" + e.message + "</Message><Resource>")
	_ = xml.EscapeText(&body, []byte(r.URL.Path))
	body.WriteString("</Resource><RequestId>" + id + "</RequestId></Error>")
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	h.Set("X-Amz-Request-Id", id)
	w.WriteHeader(e.status)
	_, _ = w.Write(body.Bytes()) // nothing is written for HEAD
}

// reset aborts the client's connection with a TCP RST, as a crashed
// server or a middlebox would; nothing of a response has been sent.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("faultproxy: hijack: %v", err)) // only HTTP/1 is served
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST rather than FIN
	}
	_ = conn.Close()
}

// stall holds r for d (0: until the client gives up) and reports whether
// to go on and forward it. The body is read first: net/http notices a
// client going away only once the body has been consumed.
func (p *Proxy) stall(r *http.Request, d time.Duration) bool {
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			p.stallDone(true)
			return false
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		p.stallDone(false)
		return true
	case <-r.Context().Done(): // the client gave up, or the proxy is closing
		p.stallDone(true)
		return false
	}
}

func (p *Proxy) stallDone(clientGaveUp bool) {
	if p.stallEnded != nil {
		p.stallEnded(clientGaveUp)
	}
}

// truncate sends resp's status and headers with the full Content-Length,
// then half the body, then closes the connection, and reports whether it
// did; a response without a body is left for copyResponse.
func (p *Proxy) truncate(w http.ResponseWriter, r *http.Request, resp *http.Response) bool {
	if r.Method == http.MethodHead || resp.ContentLength == 0 {
		return false
	}
	body := resp.Body
	size := resp.ContentLength
	if size < 0 {
		// Chunked: learn the length to announce it.
		all, err := io.ReadAll(resp.Body)
		if err != nil || len(all) == 0 {
			return false
		}
		body, size = io.NopCloser(bytes.NewReader(all)), int64(len(all))
		resp.Header.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	p.counts.injected(Truncate)
	copyHeader(w, resp)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.CopyN(w, body, size/2)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(fmt.Sprintf("faultproxy: hijack: %v", err))
	}
	// A clean close (FIN), so the client reads the half body and then an
	// unexpected EOF; an RST could discard what it has not read yet.
	_ = conn.Close()
	return true
}
