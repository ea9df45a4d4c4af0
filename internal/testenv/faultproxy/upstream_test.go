package faultproxy

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// seen is a request as the upstream received it.
type seen struct {
	Method, RequestURI, Host string
	Header                   http.Header
	Body                     []byte
}

// upstream is a tiny S3-like server: objects in a map, path-style keys,
// ListObjectsV2 and multi-object delete. It records what it receives.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	objects map[string][]byte
	seen    []seen
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{objects: map[string][]byte{}}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

func (u *upstream) object(key string) ([]byte, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	b, ok := u.objects[key]
	return b, ok
}

func etag(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seen = append(u.seen, seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), body})
	key := r.URL.Path
	h := w.Header()
	h.Set("X-Amz-Request-Id", strconv.Itoa(len(u.seen)))
	switch kind := Classify(r); kind {
	case KindPut:
		u.objects[key] = body
		h.Set("ETag", etag(body))
	case KindGetObject, KindHead:
		if key == "/chunked" {
			// Unknown length: net/http sends it chunked.
			w.WriteHeader(http.StatusOK)
			for i := range 4 {
				fmt.Fprintf(w, "chunk %d;", i)
				http.NewResponseController(w).Flush()
			}
			return
		}
		b, ok := u.objects[key]
		if !ok {
			http.Error(w, "NoSuchKey", http.StatusNotFound)
			return
		}
		h["Content-Type"] = nil // binary; the proxy must not invent a type
		h.Set("Content-Length", strconv.Itoa(len(b)))
		h.Set("ETag", etag(b))
		h.Set("Content-Encoding", "gzip") // as stored; must reach the client undecoded
		_, _ = w.Write(b)
	case KindDelete:
		delete(u.objects, key)
		w.WriteHeader(http.StatusNoContent)
	case KindDeleteMany:
		var req struct {
			Objects []struct{ Key string } `xml:"Object"`
		}
		if err := xml.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, o := range req.Objects {
			delete(u.objects, strings.TrimSuffix(key, "/")+"/"+o.Key)
		}
		h.Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, xml.Header+"<DeleteResult></DeleteResult>")
	case KindList:
		h.Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, xml.Header+"<ListBucketResult>")
		for _, k := range slices.Sorted(maps.Keys(u.objects)) {
			fmt.Fprintf(w, "<Contents><Key>%s</Key></Contents>", k)
		}
		_, _ = io.WriteString(w, "</ListBucketResult>")
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}
