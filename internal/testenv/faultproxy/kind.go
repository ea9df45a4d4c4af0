package faultproxy

import (
	"net/http"
	"net/url"
)

// Kind is what an S3 request does, as far as the proxy can tell without
// knowing whether the client uses path-style or virtual-host addressing.
type Kind string

const (
	KindGetObject  Kind = "GET object"
	KindHead       Kind = "HEAD"
	KindPut        Kind = "PUT"
	KindDelete     Kind = "DELETE"
	KindDeleteMany Kind = "POST delete" // multi-object delete, POST ?delete
	KindList       Kind = "GET list"
	KindOther      Kind = "other"
)

// listParams mark a GET as a listing: ListObjectsV2 (list-type=2) or V1,
// which s3backer sends with only marker= and max-keys=.
var listParams = []string{"list-type", "prefix", "marker", "start-after", "continuation-token", "delimiter", "max-keys"}

// Classify tells the kind of r.
func Classify(r *http.Request) Kind {
	q, _ := url.ParseQuery(r.URL.RawQuery)
	switch r.Method {
	case http.MethodGet:
		for _, k := range listParams {
			if q.Has(k) {
				return KindList
			}
		}
		return KindGetObject
	case http.MethodHead:
		return KindHead
	case http.MethodPut:
		return KindPut
	case http.MethodDelete:
		return KindDelete
	case http.MethodPost:
		if q.Has("delete") {
			return KindDeleteMany
		}
	}
	return KindOther
}
