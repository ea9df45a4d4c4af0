// Command s3ceiling measures the raw throughput of an S3 server from this
// machine: COUNT objects of SIZE bytes PUT with PARALLEL workers, then GET
// back with as many, through a bare aws-sdk-go-v2 client configured as
// s3backer-go's is (path style, static credentials, checksums only when
// required, no retries, one keep-alive transport). It is the ceiling that
// bench/s3.sh compares s3backer-go against.
//
// -parallel takes a comma-separated list; each value is one round (PUT all
// objects, then GET them back) and prints one line:
//
//	ceiling parallel=16 size=262144 count=2048 put_mbps=312.4 put_reqs=2048 put_errs=0 put_secs=1.718 put_cpu=0.61 put_server_cpu=1.90 get_mbps=...
//
// MB/s are decimal megabytes (10^6 bytes) per second, as bench/nbdcopy.sh
// prints; *_cpu is this program's CPU seconds in the phase and, with
// -server-pid, *_server_cpu the server's (Linux /proc). The flags -md5,
// -acl and -content-type add what s3backer sends with each PUT.
//
//	go run ./bench/s3ceiling -url http://127.0.0.1:7070/ -bucket b -access K -secret S -size 256k -count 2048 -parallel 8,16,32
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
)

func main() {
	url := flag.String("url", "", "S3 base URL, e.g. http://127.0.0.1:7070/")
	bucket := flag.String("bucket", "", "existing bucket")
	sizeArg := flag.String("size", "256k", "object size (bytes, or with k/M suffix)")
	count := flag.Int("count", 2048, "number of objects")
	parallel := flag.String("parallel", "16", "workers; a comma-separated list runs one round per value")
	access := flag.String("access", "", "access key id")
	secret := flag.String("secret", "", "secret access key")
	prefix := flag.String("prefix", "ceiling/", "object name prefix")
	withMD5 := flag.Bool("md5", false, "send Content-MD5 on PUT, as s3backer does")
	acl := flag.String("acl", "", "send x-amz-acl (s3backer sends private)")
	contentType := flag.String("content-type", "", "send Content-Type (s3backer sends application/x-s3backer-block)")
	phases := flag.String("phases", "put,get", "phases to run: put,get, put or get (get alone reads a previous put's objects)")
	serverPid := flag.Int("server-pid", 0, "also report the CPU seconds this process (the S3 server) spends in each phase, from /proc")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of all rounds to this file")
	flag.Parse()

	size, err := parseSize(*sizeArg)
	if err != nil || size <= 0 {
		fatalf("bad -size %q", *sizeArg)
	}
	if *url == "" || *bucket == "" || *count <= 0 {
		fatalf("-url, -bucket and a positive -count are required")
	}
	var pars []int
	for _, f := range strings.Split(*parallel, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p <= 0 {
			fatalf("bad -parallel %q", *parallel)
		}
		pars = append(pars, p)
	}
	maxPar := 0
	for _, p := range pars {
		maxPar = max(maxPar, p)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatalf("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatalf("%v", err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}

	client := newClient(*url, *access, *secret, maxPar)
	c := &bench{client: client, bucket: *bucket, prefix: *prefix, size: size, count: *count, md5: *withMD5, acl: *acl, contentType: *contentType, serverPid: *serverPid}
	doPut, doGet := strings.Contains(*phases, "put"), strings.Contains(*phases, "get")
	if !doPut && !doGet {
		fatalf("bad -phases %q", *phases)
	}
	failed := false
	for _, p := range pars {
		line := fmt.Sprintf("ceiling parallel=%d size=%d count=%d", p, size, *count)
		var errs []error
		if doPut {
			r := c.run(p, c.put)
			line += " " + r.fields("put", size)
			errs = append(errs, r.first)
		}
		if doGet {
			r := c.run(p, c.get)
			line += " " + r.fields("get", size)
			errs = append(errs, r.first)
		}
		fmt.Println(line)
		if err := errors.Join(errs...); err != nil {
			fmt.Fprintf(os.Stderr, "s3ceiling: first error: %v\n", err)
			failed = true
		}
	}
	if failed {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "s3ceiling: "+format+"\n", args...)
	os.Exit(2)
}

func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "k") || strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m") || strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	return n * mult, err
}

// newClient is an S3 client like s3backer-go's: one shared transport whose
// idle pool holds a connection for every worker, so none is re-dialled.
func newClient(url, access, secret string, workers int) *awss3.Client {
	conns := max(workers*2, 64)
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return awss3.New(awss3.Options{
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(access, secret, ""),
		HTTPClient:                 &http.Client{Transport: t, Timeout: 60 * time.Second},
		BaseEndpoint:               aws.String(url),
		UsePathStyle:               true,
		Retryer:                    aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		Logger:                     logging.Nop{},
		DisableLogOutputChecksumValidationSkipped: true,
	})
}

type bench struct {
	client      *awss3.Client
	bucket      string
	prefix      string
	size        int
	count       int
	md5         bool
	acl         string
	contentType string
	serverPid   int
}

type result struct {
	reqs, errs int64
	secs       float64
	cpu        float64 // this process's CPU seconds
	serverCPU  float64 // the server's, or -1 when not asked for
	first      error
}

func (r result) fields(phase string, size int) string {
	ok := r.reqs - r.errs
	mbps := float64(ok) * float64(size) / 1e6 / r.secs
	s := fmt.Sprintf("%s_mbps=%.1f %s_reqs=%d %s_errs=%d %s_secs=%.3f %s_cpu=%.2f", phase, mbps, phase, r.reqs, phase, r.errs, phase, r.secs, phase, r.cpu)
	if r.serverCPU >= 0 {
		s += fmt.Sprintf(" %s_server_cpu=%.2f", phase, r.serverCPU)
	}
	return s
}

// selfCPU is this process's user+system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// procCPU is process pid's user+system CPU time in seconds (Linux /proc;
// -1 when pid is 0 or unreadable).
func procCPU(pid int) float64 {
	if pid == 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// Fields after "pid (comm) ": state is the 1st, utime the 12th, stime the 13th.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// key names object i of the round with p workers: each round writes new
// objects, as a fresh disk does, rather than overwriting the last round's.
func (c *bench) key(p, i int) string { return fmt.Sprintf("%sp%d/%08x", c.prefix, p, i) }

// run calls op for objects 0..count-1 with p workers, each with its own
// buffer (random data, made before the clock starts).
func (c *bench) run(p int, op func(ctx context.Context, key string, buf []byte) error) result {
	ctx := context.Background()
	var next, reqs, errs atomic.Int64
	var once sync.Once
	var first error
	bufs := make([][]byte, p)
	for w := range bufs {
		bufs[w] = make([]byte, c.size)
		_, _ = rand.Read(bufs[w])
	}
	var wg sync.WaitGroup
	cpu0, srv0 := selfCPU(), procCPU(c.serverPid)
	start := time.Now()
	for w := range p {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= c.count {
					return
				}
				reqs.Add(1)
				if err := op(ctx, c.key(p, i), bufs[w]); err != nil {
					errs.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	r := result{reqs: reqs.Load(), errs: errs.Load(), secs: time.Since(start).Seconds(), first: first, serverCPU: -1}
	r.cpu = selfCPU() - cpu0
	if srv1 := procCPU(c.serverPid); srv0 >= 0 && srv1 >= 0 {
		r.serverCPU = srv1 - srv0
	}
	return r
}

func (c *bench) put(ctx context.Context, key string, buf []byte) error {
	in := &awss3.PutObjectInput{
		Bucket:        &c.bucket,
		Key:           &key,
		Body:          bytes.NewReader(buf),
		ContentLength: aws.Int64(int64(len(buf))),
	}
	if c.acl != "" {
		in.ACL = types.ObjectCannedACL(c.acl)
	}
	if c.contentType != "" {
		in.ContentType = &c.contentType
	}
	if c.md5 {
		sum := md5.Sum(buf)
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}
	_, err := c.client.PutObject(ctx, in)
	return err
}

func (c *bench) get(ctx context.Context, key string, buf []byte) error {
	out, err := c.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &c.bucket, Key: &key})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, buf)
	if err != nil {
		return err
	}
	// Read to EOF (normally returned with the last bytes) so that the
	// connection goes back to the idle pool.
	var one [1]byte
	if m, _ := io.ReadFull(out.Body, one[:]); m > 0 || n != c.size {
		return fmt.Errorf("get %s: not %d bytes", key, c.size)
	}
	return nil
}
