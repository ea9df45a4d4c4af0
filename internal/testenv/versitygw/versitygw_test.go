package versitygw

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMain(m *testing.M) { Main(m) }

func TestStartPutAndSeeFile(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") || !strings.HasSuffix(s.URL, "/") {
		t.Fatalf("URL = %q", s.URL)
	}
	bucket := s.NewBucket(t)
	_, err := s.Client().PutObject(context.Background(), &awss3.PutObjectInput{
		Bucket: &bucket, Key: aws.String("dir/obj"), Body: strings.NewReader("hello"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.Dir(), bucket, "dir", "obj"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("file = %q, %v", got, err)
	}
}

func TestSharedIsShared(t *testing.T) {
	a, b := Shared(t), Shared(t)
	if a != b {
		t.Fatal("Shared returned two servers")
	}
	if x, y := a.NewBucket(t), a.NewBucket(t); x == y {
		t.Fatalf("NewBucket repeated the name %q", x)
	}
}

func TestNewBucketNameRules(t *testing.T) {
	s := Shared(t)
	t.Run(strings.Repeat("Long_Name ", 10), func(t *testing.T) {
		name := s.NewBucket(t)
		if len(name) < 3 || len(name) > 63 || strings.ToLower(name) != name {
			t.Fatalf("bad bucket name %q", name)
		}
	})
}
