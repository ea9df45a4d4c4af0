package s3

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsFromConfig(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	o, err := OptionsFromConfig(parseConfig(t, "--accessId=ID", "--accessKey=KEY", "--region=eu-west-1",
		"--accessType=public-read", "--storageClass=STANDARD_IA", "--sse=aws:kms", "--sse-key-id=kid",
		"--timeout=7", "--http11", "--insecure", "--maxUploadSpeed=8m", "--maxDownloadSpeed=16m",
		"--encrypt", "--password=pw", "--debug-http", "--noCurlCache"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Bucket", o.Bucket, "bucket"},
		{"BaseURL", o.BaseURL, "http://s3.eu-west-1.amazonaws.com/"},
		{"Region", o.Region, "eu-west-1"},
		{"Vhost", o.Vhost, true}, // an explicit --region turns it on (§1.6)
		{"Credentials", o.Credentials, Credentials{Mode: CredentialsStatic, AccessID: "ID", AccessKey: "KEY"}},
		{"AccessType", o.AccessType, "public-read"},
		{"StorageClass", o.StorageClass, "STANDARD_IA"},
		{"SSE", o.SSE, "aws:kms"},
		{"SSEKeyID", o.SSEKeyID, "kid"},
		{"AcceptEncoding", o.AcceptEncoding, "deflate, zstd, encrypt-AES-128-CBC"},
		{"Timeout", o.Timeout, 7 * time.Second},
		{"HTTP11", o.HTTP11, true},
		{"Insecure", o.Insecure, true},
		{"NoKeepAlive", o.NoKeepAlive, true},
		{"MaxUploadSpeed", o.MaxUploadSpeed, int64(8 << 20)},
		{"MaxDownloadSpeed", o.MaxDownloadSpeed, int64(16 << 20)},
		{"DebugHTTP", o.DebugHTTP, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if o.MaxConnsPerHost < 64 {
		t.Errorf("MaxConnsPerHost = %d, want room for the worker pools", o.MaxConnsPerHost)
	}

	o, err = OptionsFromConfig(parseConfig(t, "--accessId=", "--baseURL=http://127.0.0.1:9000/", "--region=us-west-2", "--no-vhost"))
	if err != nil {
		t.Fatal(err)
	}
	if o.BaseURL != "http://127.0.0.1:9000/" || o.Vhost || o.Region != "us-west-2" || o.Credentials.Mode != CredentialsAnonymous ||
		o.AcceptEncoding != "deflate, zstd" || o.AccessType != "private" {
		t.Errorf("loopback options %+v", o)
	}
}

func TestOptionsFromConfigRefusesAWS2(t *testing.T) {
	_, err := OptionsFromConfig(parseConfig(t, "--authVersion=aws2", "--accessId=a", "--accessKey=b"))
	want := "--authVersion=aws2 is not supported; aws4 works with every S3 service"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestOptionsFromConfigCredentialError(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	_, err := OptionsFromConfig(parseConfig(t, "--accessId=lonely"))
	if err == nil || !strings.Contains(err.Error(), "lonely") {
		t.Fatalf("error %v, want one about the missing key", err)
	}
}
