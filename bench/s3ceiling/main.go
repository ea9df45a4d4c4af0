// Command s3ceiling measures the raw throughput of an S3 server from this
// machine: COUNT objects of SIZE bytes PUT with PARALLEL workers, then GET
// back with as many, through a bare aws-sdk-go-v2 client configured as
// s3backer-go's is (path style, static credentials, checksums only when
// required, no retries, one keep-alive transport). It is the ceiling that
// bench/s3.sh compares s3backer-go against.
//
// -parallel takes a comma-separated list; each value is one round (PUT all
// objects, then GET all objects) and prints one line:
//
//	ceiling parallel=16 size=262144 count=2048 put_mbps=312.4 put_reqs=2048 put_errs=0 put_secs=1.718 get_mbps=... get_reqs=2048 get_errs=0 get_secs=...
//
// MB/s are decimal megabytes (10^6 bytes) per second, as nbdcopy.sh prints.
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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
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
	c := &bench{client: client, bucket: *bucket, prefix: *prefix, size: size, count: *count, md5: *withMD5}
	for _, p := range pars {
		put := c.run(p, c.put)
		get := c.run(p, c.get)
		fmt.Printf("ceiling parallel=%d size=%d count=%d %s %s\n", p, size, *count, put.fields("put", size), get.fields("get", size))
		if put.errs > 0 || get.errs > 0 {
			fmt.Fprintf(os.Stderr, "s3ceiling: first error: %v\n", errors.Join(put.first, get.first))
		}
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
	client *awss3.Client
	bucket string
	prefix string
	size   int
	count  int
	md5    bool
}

type result struct {
	reqs, errs int64
	secs       float64
	first      error
}

func (r result) fields(phase string, size int) string {
	ok := r.reqs - r.errs
	mbps := float64(ok) * float64(size) / 1e6 / r.secs
	return fmt.Sprintf("%s_mbps=%.1f %s_reqs=%d %s_errs=%d %s_secs=%.3f", phase, mbps, phase, r.reqs, phase, r.errs, phase, r.secs)
}

func (c *bench) key(i int) string { return fmt.Sprintf("%s%08x", c.prefix, i) }

// run calls op for objects 0..count-1 with p workers, each with its own
// buffer (random data, made before the clock starts).
func (c *bench) run(p int, op func(ctx context.Context, i int, buf []byte) error) result {
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
	start := time.Now()
	for w := range p {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= c.count {
					return
				}
				reqs.Add(1)
				if err := op(ctx, i, bufs[w]); err != nil {
					errs.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	return result{reqs: reqs.Load(), errs: errs.Load(), secs: time.Since(start).Seconds(), first: first}
}

func (c *bench) put(ctx context.Context, i int, buf []byte) error {
	in := &awss3.PutObjectInput{
		Bucket:        &c.bucket,
		Key:           aws.String(c.key(i)),
		Body:          bytes.NewReader(buf),
		ContentLength: aws.Int64(int64(len(buf))),
	}
	if c.md5 {
		sum := md5.Sum(buf)
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}
	_, err := c.client.PutObject(ctx, in)
	return err
}

func (c *bench) get(ctx context.Context, i int, buf []byte) error {
	out, err := c.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &c.bucket, Key: aws.String(c.key(i))})
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
		return fmt.Errorf("get %s: not %d bytes", c.key(i), c.size)
	}
	return nil
}
