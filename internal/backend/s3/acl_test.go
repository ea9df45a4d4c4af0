package s3

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/s3backer-go/s3backer/internal/backend"
)

// A bucket whose ACLs are disabled (S3 Object Ownership "bucket owner
// enforced") refuses a PUT that names an ACL. With the default private
// ACL the PUT goes again without it, and so do the later ones; an ACL
// that cannot be had there is a clear, permanent error. Both request
// paths.
func TestPutWithACLsDisabled(t *testing.T) {
	refuseACLs := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Acl") != "" {
			s3Error(w, http.StatusBadRequest, "AccessControlListNotSupported", "The bucket does not allow ACLs")
			return
		}
		w.Header().Set("ETag", `"0123"`)
	}
	for _, sdk := range []bool{false, true} {
		f := newFakeS3(t, refuseACLs)
		o := f.options()
		o.SDKRequests = sdk
		b := mustNew(t, o)
		for i := range 2 {
			if etag, err := b.Put(context.Background(), "k", []byte("data"), backend.Meta{}); err != nil || etag != "0123" {
				t.Fatalf("SDK %v: put %d: %q, %v", sdk, i, etag, err)
			}
		}
		var acls []string
		for _, r := range f.requests() {
			acls = append(acls, r.Header.Get("X-Amz-Acl"))
		}
		if strings.Join(acls, ",") != "private,," {
			t.Errorf("SDK %v: x-amz-acl of the PUTs %q, want private once, then none", sdk, acls)
		}

		f = newFakeS3(t, refuseACLs)
		o = f.options()
		o.SDKRequests, o.AccessType = sdk, "public-read"
		b = mustNew(t, o)
		_, err := b.Put(context.Background(), "k", []byte("data"), backend.Meta{})
		if err == nil || !backend.IsPermanent(err) || !strings.Contains(err.Error(), "--accessType=public-read cannot apply") {
			t.Errorf("SDK %v: public-read on a bucket without ACLs: %v, want a permanent error naming --accessType", sdk, err)
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("SDK %v: %d PUTs for public-read, want 1", sdk, n)
		}
	}
}
