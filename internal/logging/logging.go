// Package logging builds the program's slog.Logger: text lines on stderr in
// the foreground, syslog when daemonized (as s3backer does).
package logging

import (
	"context"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strings"
	"sync"
)

// Options choose where logs go.
type Options struct {
	Debug  bool // --debug / -d: include debug records
	Syslog bool // daemonized: send to syslog instead of stderr
}

// New returns the logger. If syslog is wanted but unreachable (no /dev/log,
// as in many containers) records go nowhere rather than failing start-up.
func New(opt Options) *slog.Logger {
	level := slog.LevelInfo
	if opt.Debug {
		level = slog.LevelDebug
	}
	hopt := &slog.HandlerOptions{Level: level}
	if !opt.Syslog {
		return slog.New(slog.NewTextHandler(os.Stderr, hopt))
	}
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "s3backer")
	if err != nil {
		return slog.New(slog.NewTextHandler(io.Discard, hopt))
	}
	return slog.New(&syslogHandler{w: w, level: level, mu: new(sync.Mutex)})
}

// syslogHandler writes each record as one syslog message at the matching
// priority; the time stamp is syslog's own.
type syslogHandler struct {
	w     *syslog.Writer
	level slog.Level
	attrs []slog.Attr
	group string
	mu    *sync.Mutex
}

func (h *syslogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *syslogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	// Reuse slog's text format for the attributes, without time and level.
	th := slog.NewTextHandler(&b, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	var hh slog.Handler = th.WithAttrs(h.attrs)
	if h.group != "" {
		hh = hh.WithGroup(h.group)
	}
	if err := hh.Handle(context.Background(), r); err != nil {
		return err
	}
	msg := strings.TrimSuffix(b.String(), "\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Err(msg)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(msg)
	case r.Level >= slog.LevelInfo:
		return h.w.Info(msg)
	default:
		return h.w.Debug(msg)
	}
}

func (h *syslogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}
