// Command s3latency is a loopback HTTP proxy that holds every request for
// a fixed time before forwarding it, so that a benchmark on a local S3
// server (versitygw) sees the first-byte latency of a remote S3 endpoint.
// Requests are forwarded as they came (path, query, Host and headers), so
// SigV4 signatures made for the proxy's address still verify upstream.
//
//	s3latency -upstream http://127.0.0.1:7070 -delay 30ms
//
// It prints its own base URL on stdout and serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	upstream := flag.String("upstream", "", "base URL of the S3 server (http://host:port)")
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	delay := flag.Duration("delay", 30*time.Millisecond, "time each request is held before it is forwarded")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		log.Fatalf("s3latency: -upstream %q: want http://host:port", *upstream)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("s3latency: -listen %q: want a loopback address", *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = u.Scheme, u.Host
			r.Out.Host = r.In.Host // the signed Host
		},
		Transport: &http.Transport{
			Proxy:               nil,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 256,
		},
		FlushInterval: -1,
	}
	fmt.Println("http://" + ln.Addr().String())
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(*delay)
		rp.ServeHTTP(w, r)
	})))
}
