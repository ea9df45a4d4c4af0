package main

/*
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"context"
	"log/slog"
	"syscall"
	"unsafe"
)

// The functions the C plugin calls (shim/plugin.c declares the same
// signatures). Each request returns 0 or an errno, with *msg set to a
// malloc'd message for nbdkit_error that the caller frees.

// srv is the open disk, set by s3bStart before nbdkit serves any
// connection (nbdkit orders after_fork before every request), cleared by
// s3bStop after the last.
var srv *plugin

// cParams copies n key=value pairs from C.
func cParams(n C.int, keys, values **C.char) [][2]string {
	ks := unsafe.Slice(keys, int(n))
	vs := unsafe.Slice(values, int(n))
	params := make([][2]string, n)
	for i := range params {
		params[i] = [2]string{C.GoString(ks[i]), C.GoString(vs[i])}
	}
	return params
}

// serve runs a request's work on a worker goroutine and waits for it.
// The calling nbdkit thread is locked to its goroutine: every time the
// work waits (for a GET's response, a body, a batch of MD5s, a cache
// slot) a locked goroutine puts its whole OS thread to sleep and wakes it
// again, where a free goroutine costs a cheap switch. Handing the work
// over makes that one sleep and one wake-up a request. Workers stay for
// the next request (a fresh goroutine would grow its stack every time),
// so there are as many as requests were ever in flight at once, at most
// nbdkit's threads.
func serve(work func(ctx context.Context) error) error {
	j := job{work: work, done: make(chan error, 1)}
	select {
	case jobs <- j: // an idle worker took it
	default:
		go worker(j)
	}
	return <-j.done
}

type job struct {
	work func(ctx context.Context) error
	done chan error
}

// jobs hands requests to idle workers.
var jobs = make(chan job)

func worker(j job) {
	for {
		j.done <- j.work(context.Background())
		j = <-jobs
	}
}

// fail sets *msg to err's text and returns its errno.
func fail(msg **C.char, err error) C.int {
	*msg = C.CString(err.Error())
	return C.int(errnoOf(err))
}

//export s3bValidate
func s3bValidate(n C.int, keys, values **C.char, pw **C.char, pwLen *C.size_t) *C.char {
	p, err := validate(cParams(n, keys, values))
	if err != nil {
		return C.CString(err.Error())
	}
	if p != nil {
		*pw = (*C.char)(C.CBytes(p))
		*pwLen = C.size_t(len(p))
		clear(p)
	}
	return nil
}

//export s3bStart
func s3bStart(n C.int, keys, values **C.char, pw *C.char, pwLen C.size_t, cwd *C.char, logFn C.s3b_log_fn) *C.char {
	var p []byte
	if pw != nil {
		p = C.GoBytes(unsafe.Pointer(pw), C.int(pwLen))
		defer clear(p)
	}
	newLog := func(debug bool) *slog.Logger { return newLogger(logFn, debug) }
	s, err := start(cParams(n, keys, values), p, C.GoString(cwd), newLog)
	if err != nil {
		return C.CString(err.Error())
	}
	srv = s
	return nil
}

//export s3bStop
func s3bStop() *C.char {
	if srv == nil {
		return nil
	}
	err := srv.stop()
	srv = nil
	if err != nil {
		return C.CString(err.Error())
	}
	return nil
}

//export s3bInfo
func s3bInfo(size *C.int64_t, readOnly, canCache *C.int, minimum, preferred, maximum *C.uint32_t) {
	*size = C.int64_t(srv.vol.Size())
	*readOnly = cBool(srv.vol.ReadOnly())
	// Without a block cache a prefetch has nowhere to go.
	*canCache = cBool(srv.cfg.BlockCacheSize > 0 && !srv.cfg.SharedDiskMode)
	mi, pr, ma := blockSizes(int64(srv.vol.BlockSize()))
	*minimum, *preferred, *maximum = C.uint32_t(mi), C.uint32_t(pr), C.uint32_t(ma)
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

//export s3bPread
func s3bPread(buf unsafe.Pointer, count C.uint32_t, off C.uint64_t, msg **C.char) C.int {
	b := unsafe.Slice((*byte)(buf), int(count))
	if err := serve(func(ctx context.Context) error { return srv.vol.ReadAt(ctx, b, int64(off)) }); err != nil {
		return fail(msg, opError("read", int64(count), int64(off), err))
	}
	return 0
}

//export s3bPwrite
func s3bPwrite(buf unsafe.Pointer, count C.uint32_t, off C.uint64_t, fua C.int, msg **C.char) C.int {
	b := unsafe.Slice((*byte)(buf), int(count))
	if err := serve(func(ctx context.Context) error { return srv.vol.WriteAt(ctx, b, int64(off), fua != 0) }); err != nil {
		return fail(msg, opError("write", int64(count), int64(off), err))
	}
	return 0
}

// s3bZero serves both zero and trim: s3backer stores no zero blocks, so
// zeroing whole blocks deletes them, which is what a trim does too; and it
// is never slower than writing, so a fast zero is always honoured.
//
//export s3bZero
func s3bZero(count C.uint32_t, off C.uint64_t, fua C.int, msg **C.char) C.int {
	if err := serve(func(ctx context.Context) error { return srv.vol.Zero(ctx, int64(off), int64(count), fua != 0) }); err != nil {
		return fail(msg, opError("zero", int64(count), int64(off), err))
	}
	return 0
}

//export s3bFlush
func s3bFlush(msg **C.char) C.int {
	if err := serve(srv.vol.Flush); err != nil {
		return fail(msg, err)
	}
	return 0
}

//export s3bCache
func s3bCache(count C.uint32_t, off C.uint64_t, msg **C.char) C.int {
	if err := srv.vol.Cache(context.Background(), int64(off), int64(count)); err != nil {
		return fail(msg, opError("cache", int64(count), int64(off), err))
	}
	return 0
}

//export s3bExtents
func s3bExtents(count C.uint32_t, off C.uint64_t, reqOne C.int, ext unsafe.Pointer, add C.s3b_extent_fn, msg **C.char) C.int {
	err := srv.extents(int64(off), int64(count), reqOne != 0, func(o, l int64, typ uint32) error {
		if C.s3b_call_extent(add, ext, C.uint64_t(o), C.uint64_t(l), C.uint32_t(typ)) != 0 {
			return syscall.EIO // nbdkit has logged why
		}
		return nil
	})
	if err != nil {
		return fail(msg, opError("block status", int64(count), int64(off), err))
	}
	return 0
}
