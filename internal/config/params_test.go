package config

import (
	"fmt"
	"testing"
	"time"
)

func TestParseParams(t *testing.T) {
	c, err := ParseParams([][2]string{
		{"s3b_size", "1g"}, {"blockSize", "64k"}, {"s3b_force", "TRUE"}, {"readOnly", "false"},
		{"compress", "true"}, {"encrypt", "aes-256-cbc"}, {"s3b_timeout", "5"}, {"bucket", "mybucket/disk"},
		{"nbdkitThing", "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Plugin || !c.IsNBD() || c.NBD || c.Size != 1<<30 || c.BlockSize != 64<<10 || !c.Force || c.ReadOnly ||
		c.Compress != "deflate" || c.Encrypt != "AES-256-CBC" || c.Timeout != 5*time.Second ||
		c.Bucket != "mybucket" || c.Prefix != "disk/" || c.Target != "" {
		t.Errorf("%+v", c)
	}
	if c.ReadAhead != 0 || c.ReadAheadTrigger != 0 {
		t.Errorf("read-ahead %d/%d, want 0/0", c.ReadAhead, c.ReadAheadTrigger)
	}
	if !hasWarning(c, "ignoring unknown parameter nbdkitThing") {
		t.Errorf("warnings %q", c.Warnings)
	}
	// Optional-value flags: true/false make them booleans.
	c, err = ParseParams([][2]string{{"compress", "zstd"}, {"encrypt", "false"}, {"accessEC2IAM", "true"}, {"bucket", "b"}})
	if err != nil || c.Compress != "zstd" || c.Encrypt != "" || !c.AccessEC2IAM || c.AccessEC2IAMRole != "" {
		t.Errorf("%v %+v", err, c)
	}
	// A bucket starting with '-' is still the bucket.
	if c, err := ParseParams([][2]string{{"bucket", "-odd"}}); err != nil || c.Bucket != "-odd" {
		t.Errorf("%v %+v", err, c)
	}

	// A config file written for FUSE: its FUSE flags and mount point are
	// ignored, the bucket parameter comes last.
	dir := t.TempDir()
	f := writeFile(t, dir, "fuse.conf", "-o\nallow_other\n-f\n-h\n-v\n--size=1g\n")
	c, err = ParseParams([][2]string{{"s3b_configFile", f}, {"bucket", "mybucket"}})
	if err != nil || c.Size != 1<<30 || c.Bucket != "mybucket" || c.Action != ActionRun {
		t.Errorf("%v %+v", err, c)
	}
	g := writeFile(t, dir, "both.conf", "--size=1g\nmybucket\n/mnt\n")
	c, err = ParseParams([][2]string{{"configFile", g}})
	if err != nil || c.Bucket != "mybucket" || c.Target != "" {
		t.Errorf("mount point in a config file: %v %+v", err, c)
	}

	errs := []struct {
		params [][2]string
		wants  []string
	}{
		{[][2]string{{"s3b_blokSize", "4k"}, {"bucket", "b"}}, []string{`unknown s3backer parameter "s3b_blokSize"`, "did you mean s3b_blockSize?"}},
		{[][2]string{{"readOnly", "yes"}, {"bucket", "b"}}, []string{"readOnly=yes", "want true or false"}},
		{[][2]string{{"bucket", "a"}, {"s3b_bucket", "b"}}, []string{`duplicate "s3b_bucket"`}},
		{[][2]string{{"erase", "true"}, {"bucket", "b"}}, []string{"erase=true", "not allowed in the nbdkit plugin"}},
		{[][2]string{{"s3b_nbd", "true"}, {"bucket", "b"}}, []string{"s3b_nbd=true", "not allowed"}},
		{[][2]string{{"help", "true"}}, []string{"help=true", "not allowed"}},
		{[][2]string{{"size", "1q"}, {"bucket", "b"}}, []string{"--size=1q", "invalid size"}},
		{[][2]string{{"size", "1g"}}, []string{"missing bucket"}},
		{[][2]string{{"configFile", g}, {"bucket", "b"}}, []string{`unexpected extra operand "b"`}},
	}
	for _, tt := range errs {
		_, err := ParseParams(tt.params)
		wantErr(t, fmt.Sprint(tt.params), err, tt.wants...)
	}
	e := writeFile(t, dir, "erase.conf", "--erase\n")
	_, err = ParseParams([][2]string{{"configFile", e}, {"bucket", "b"}})
	wantErr(t, "erase in a file", err, e+":1", "--erase", "not allowed in the nbdkit plugin")
	// "s3b_" alone is not a prefix.
	_, err = ParseParams([][2]string{{"s3b_", "x"}, {"bucket", "b"}})
	if err != nil {
		t.Error(err)
	}
}
