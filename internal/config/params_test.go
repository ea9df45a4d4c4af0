package config

import (
	"fmt"
	"strings"
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
	if c.ReadAhead != DefaultReadAhead || c.ReadAheadTrigger != DefaultReadAheadTrigger {
		t.Errorf("read-ahead %d/%d, want the defaults", c.ReadAhead, c.ReadAheadTrigger)
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

// TestNBDKitParams: the plugin, given the parameters the --nbd wrapper
// builds, ends up with the same disk configuration as the command line.
func TestNBDKitParams(t *testing.T) {
	dir := t.TempDir()
	conf := writeFile(t, dir, "disk.conf", "--size=2g\n--accessKey=secret\nconfbucket\n")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--nbd", "-f", "--test", "--size=1g", "--blockSize=64k", "--readOnly", "--nbd-flag=--filter=exitlast",
			"--nbd-param=foo=bar", "dir/sub", "nbd+unix:///?socket=/s"},
			[]string{"s3b_test=true", "s3b_size=1g", "s3b_blockSize=64k", "s3b_readOnly=true", "bucket=dir/sub"}},
		{[]string{"--nbd", "-d", "--compress", "--encrypt=aes-256-cbc", "--password=pw", "--baseURL=http://127.0.0.1:1/",
			"--force=true", "--", "-bucket/pre", "/dev/nbd0"},
			[]string{"s3b_debug=true", "s3b_compress=true", "s3b_encrypt=aes-256-cbc", "s3b_password=pw",
				"s3b_baseURL=http://127.0.0.1:1/", "s3b_force=true", "bucket=-bucket/pre"}},
		// The bucket from a config file: the file is passed, not its contents.
		{[]string{"--nbd", "--configFile=" + conf, "--nbd-param=x=y", "/dev/nbd1"},
			[]string{"s3b_configFile=" + conf}},
	}
	for _, tt := range tests {
		got := NBDKitParams(tt.args)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%q:\n got %q\nwant %q", tt.args, got, tt.want)
			continue
		}
		cli, err := Parse(tt.args)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		var kv [][2]string
		for _, p := range got {
			k, v, _ := strings.Cut(p, "=")
			kv = append(kv, [2]string{k, v})
		}
		plug, err := ParseParams(kv)
		if err != nil {
			t.Fatalf("%q: plugin: %v", got, err)
		}
		// What the disk is made of must agree; the mode fields differ by
		// design.
		disk := func(c *Config) string {
			return fmt.Sprintf("bucket=%q prefix=%q test=%v size=%d bs=%d ro=%v force=%v debug=%v compress=%q encrypt=%q pw=%q key=%q url=%q ra=%d",
				c.Bucket, c.Prefix, c.Test, c.Size, c.BlockSize, c.ReadOnly, c.Force, c.Debug, c.Compress, c.Encrypt,
				c.Password, c.AccessKey, c.BaseURL, c.ReadAhead)
		}
		if disk(cli) != disk(plug) {
			t.Errorf("%q:\ncommand line %s\n      plugin %s", tt.args, disk(cli), disk(plug))
		}
	}
}
