package codec

import (
	"bytes"
	"context"
	"testing"
)

// The codec's tags are its objects' ETags: a conditional read says
// whether a block is still the one a tag was taken from, with one GET.
func TestTags(t *testing.T) {
	ctx := context.Background()
	s, b := memStore(t, func(o *Options) { o.Compress = "deflate" })
	bs := s.BlockSize()
	buf := make([]byte, bs)
	tag, err := s.WriteBlockTag(ctx, 3, fill(bs, 'a'))
	if err != nil || tag == "" {
		t.Fatalf("write: %q, %v", tag, err)
	}
	if got, err := s.ReadBlockTag(ctx, 3, buf); err != nil || got != tag || !bytes.Equal(buf, fill(bs, 'a')) {
		t.Fatalf("read: %q, %v", got, err)
	}
	gets := b.Counts().Gets
	clear(buf)
	changed, newTag, err := s.ReadBlockIfChanged(ctx, 3, tag, buf)
	if err != nil || changed || newTag != tag || !bytes.Equal(buf, make([]byte, bs)) || b.Counts().Gets != gets+1 {
		t.Fatalf("unchanged block: changed %v tag %q err %v (buf touched, or not one GET)", changed, newTag, err)
	}
	tag2, _ := s.WriteBlockTag(ctx, 3, fill(bs, 'b'))
	changed, newTag, err = s.ReadBlockIfChanged(ctx, 3, tag, buf)
	if err != nil || !changed || newTag != tag2 || !bytes.Equal(buf, fill(bs, 'b')) {
		t.Fatalf("rewritten block: changed %v tag %q err %v", changed, newTag, err)
	}
	if tag, err := s.WriteBlockTag(ctx, 3, nil); err != nil || tag != "" {
		t.Fatalf("zero write: %q, %v", tag, err)
	}
	changed, _, err = s.ReadBlockIfChanged(ctx, 3, tag2, buf)
	if err != nil || !changed || !bytes.Equal(buf, make([]byte, bs)) {
		t.Fatalf("deleted block: changed %v err %v", changed, err)
	}
	if changed, _, err = s.ReadBlockIfChanged(ctx, 3, "", buf); err != nil || changed {
		t.Fatalf("expected absent, absent: changed %v err %v", changed, err)
	}
	_, _ = s.WriteBlockTag(ctx, 3, fill(bs, 'c'))
	if changed, _, err = s.ReadBlockIfChanged(ctx, 3, "", buf); err != nil || !changed || !bytes.Equal(buf, fill(bs, 'c')) {
		t.Fatalf("expected absent, stored: changed %v err %v", changed, err)
	}
}
