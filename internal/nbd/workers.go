package nbd

import "sync"

// workerPool runs the requests of one connection on long-lived goroutines,
// at most limit at once. A goroutine per request would be simpler, but the
// device's call stacks are deep (the S3 SDK's middleware), so each new
// goroutine grows and copies its stack several times before it is done:
// 5 to 10 % of the server's CPU in profiles of S3 reads and writes. A
// worker keeps its grown stack from one request to the next.
//
// submit and wait belong to the connection's reader alone.
type workerPool struct {
	limit int
	serve func(*request)
	reqs  chan request // unbuffered: a send succeeds only into an idle worker
	n     int          // workers started
	wg    sync.WaitGroup
}

func newWorkerPool(limit int, serve func(*request)) *workerPool {
	return &workerPool{limit: limit, serve: serve, reqs: make(chan request)}
}

// submit hands r to an idle worker, or to a new one while fewer than limit
// exist, or else waits for one to be free: back-pressure on the client.
func (p *workerPool) submit(r request) {
	select {
	case p.reqs <- r:
		return
	default:
	}
	if p.n < p.limit {
		p.n++
		p.wg.Go(func() { p.work(r) })
		return
	}
	p.reqs <- r
}

// work serves r, then whatever the reader hands it, until wait.
func (p *workerPool) work(r request) {
	for ok := true; ok; r, ok = <-p.reqs {
		p.serve(&r)
	}
}

// wait lets the workers go once their requests are done, and returns when
// they all have. No submit may follow.
func (p *workerPool) wait() {
	close(p.reqs)
	p.wg.Wait()
}
