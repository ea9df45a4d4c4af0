package main

/*
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"unsafe"
)

// newLogger sends the stack's log records to nbdkit's log, one line each
// (nbdkit_error for warnings and errors, nbdkit_debug, seen with nbdkit
// -v, for the rest): nbdkit decides between stderr and syslog.
func newLogger(fn C.s3b_log_fn, debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(&handler{fn: fn, level: level, mu: new(sync.Mutex)})
}

type handler struct {
	fn    C.s3b_log_fn
	level slog.Level
	attrs []slog.Attr
	group string
	mu    *sync.Mutex
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	// slog's text format for the attributes; nbdkit stamps the time
	// and says error or debug, so warnings say what they are.
	if r.Level >= slog.LevelWarn && r.Level < slog.LevelError {
		b.WriteString("warning: ")
	}
	var th slog.Handler = slog.NewTextHandler(&b, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	th = th.WithAttrs(h.attrs)
	if h.group != "" {
		th = th.WithGroup(h.group)
	}
	if err := th.Handle(context.Background(), r); err != nil {
		return err
	}
	level := C.int(C.S3B_LOG_DEBUG)
	switch {
	case r.Level >= slog.LevelError:
		level = C.S3B_LOG_ERROR
	case r.Level >= slog.LevelWarn:
		level = C.S3B_LOG_WARN
	case r.Level >= slog.LevelInfo:
		level = C.S3B_LOG_INFO
	}
	msg := C.CString(string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))))
	defer C.free(unsafe.Pointer(msg))
	h.mu.Lock()
	defer h.mu.Unlock()
	C.s3b_call_log(h.fn, level, msg)
	return nil
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}
