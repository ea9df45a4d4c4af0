package e2e

import (
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/s3backer-go/s3backer/internal/testenv/versitygw"
)

// seedConf is the options file of s3backer's NBD guide, word for word
// (the config package's parse tests read the same file).
const seedConf = "../../internal/config/testdata/s3backer-options.conf"

// The options file of s3backer's NBD guide, unchanged but for where its
// files live, serves a disk in FUSE mode (the guide: "use this file in
// either FUSE or NBD mode") on S3 over TLS: 1 TiB of 256 KiB blocks,
// --listBlocks, CBC encryption, a 20000-block cache file with a 15 s write
// delay. ext4 is made on it as users do (mkfs discards the whole terabyte)
// and mounted with the guide's fstab options; after a restart every file
// reads back and e2fsck finds nothing wrong.
func TestSeedOptionsConf(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck", "losetup")
	gw := versitygw.Shared(t)
	bucket := gw.NewBucket(t)

	// TLS in front of the gateway (--ssl wants https), the Host the
	// client signed passed on.
	up, err := url.Parse(gw.URL)
	if err != nil {
		t.Fatal(err)
	}
	tlsFront := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.Out.URL.Scheme, r.Out.URL.Host, r.Out.Host = up.Scheme, up.Host, r.In.Host
	}})
	t.Cleanup(tlsFront.Close)
	home := t.TempDir()
	ca := filepath.Join(home, "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsFront.Certificate().Raw})))

	conf, err := os.ReadFile(seedConf)
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(home, "etc", "s3backer-options.conf")
	if err := os.MkdirAll(filepath.Dir(confPath), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, confPath, strings.ReplaceAll(string(conf), "/home/archie/", home+"/"))
	writeFile(t, filepath.Join(home, ".s3b_passwd"), gw.AccessKey+":"+gw.SecretKey+"\n")
	writeFile(t, filepath.Join(home, ".s3b_key"), "correct horse battery staple\n")
	flags := []string{"--configFile=" + confPath, "--baseURL=" + tlsFront.URL + "/", "--cacert=" + ca}

	m := startFUSE(t, flags, bucket)
	if st, err := os.Stat(m.File); err != nil || st.Size() != 1<<40 {
		t.Fatalf("disk file: %v, %v; want 1 TiB", st, err)
	}
	dev := loopDevice(t, m.File)
	run(t, "mkfs.ext4", "-q", "-F", dev)
	fsDir := mountExt4(t, dev, "discard", "noatime", "nodiratime")
	sums := map[string][32]byte{}
	for i, n := range []int{3<<20 + 12345, 17, 5 << 20} {
		name := fmt.Sprintf("f%d", i)
		sums[name] = writeRandom(t, filepath.Join(fsDir, name), n)
	}
	run(t, "umount", fsDir)
	run(t, "losetup", "-d", dev)
	m.stop(syscall.SIGTERM)

	m = startFUSE(t, flags, bucket)
	verifyExt4(t, m, sums, "discard", "noatime", "nodiratime")
	m.stop(syscall.SIGTERM)
	// The file's cache file and survey were in use.
	for _, want := range []string{`msg="cache file holds blocks from the last run"`, `msg="survey of stored blocks complete"`} {
		if log := m.logText(); !strings.Contains(log, want) {
			t.Errorf("the restart's log does not say %s:\n%s", want, log)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
