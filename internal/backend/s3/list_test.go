package s3

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// v1Only answers every listing as a server that knows only ListObjects
// (v1) would: list-type=2, start-after and continuation-token are
// ignored, marker is honoured (unless ignoreMarker), pages hold max-keys.
func v1Only(keys []string, ignoreMarker bool) func(w http.ResponseWriter, r *http.Request) {
	sort.Strings(keys)
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		marker := q.Get("marker")
		if ignoreMarker {
			marker = ""
		}
		max, _ := strconv.Atoi(q.Get("max-keys"))
		var page []string
		for _, k := range keys {
			if k > marker && strings.HasPrefix(k, q.Get("prefix")) {
				page = append(page, k)
			}
		}
		truncated := len(page) > max
		page = page[:min(len(page), max)]
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`+
			`<Name>bkt</Name><Prefix>%s</Prefix><Marker>%s</Marker><MaxKeys>%d</MaxKeys><IsTruncated>%v</IsTruncated>`,
			q.Get("prefix"), marker, max, truncated)
		for _, k := range page {
			fmt.Fprintf(&b, `<Contents><Key>%s</Key><Size>4096</Size><ETag>"0123"</ETag></Contents>`, k)
		}
		b.WriteString(`</ListBucketResult>`)
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(b.String()))
	}
}

// A server that answers ListObjectsV2 as v1 (truncated, no continuation
// token) is listed to the end in v1, as s3backer lists: stopping after
// the first page would call every later block absent, and a survey would
// then read them as zeroes.
func TestListOnV1OnlyServer(t *testing.T) {
	var keys []string
	for i := range 2500 {
		keys = append(keys, fmt.Sprintf("disk/%08x", i))
	}
	keys = append(keys, "other/x")
	f := newFakeS3(t, v1Only(keys, false))
	b := mustNew(t, f.options())
	var got []string
	if err := b.List(context.Background(), "disk/", "disk/00000009", func(k string) error {
		got = append(got, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2490 || got[0] != "disk/0000000a" || got[len(got)-1] != "disk/000009c3" {
		t.Fatalf("listed %d keys (%q … %q), want the 2490 after disk/00000009", len(got), got[0], got[len(got)-1])
	}
	reqs := f.requests()
	if len(reqs) != 4 || !strings.Contains(reqs[0].RawQuery, "list-type=2") || strings.Contains(reqs[1].RawQuery, "list-type=2") ||
		!strings.Contains(reqs[1].RawQuery, "marker=disk%2F00000009") {
		var qs []string
		for _, r := range reqs {
			qs = append(qs, r.RawQuery)
		}
		t.Errorf("requests %q, want one v2 listing, then v1 from where it started", qs)
	}

	// A server whose pages never move on is an error, not a loop.
	f = newFakeS3(t, v1Only(keys, true))
	b = mustNew(t, f.options())
	err := b.List(context.Background(), "disk/", "", func(string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "listed") {
		t.Fatalf("a listing that does not move on: %v, want an error", err)
	}
}
