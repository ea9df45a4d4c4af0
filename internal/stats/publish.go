package stats

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// PublishOptions say where the counters are shown outside the process.
type PublishOptions struct {
	// MetricsListen serves /metrics there (--metricsListen); empty: off.
	MetricsListen string
	// Mirror rewrites the stats text to this file every MirrorInterval
	// (--statsFileMirror); empty: off.
	Mirror         string
	MirrorInterval time.Duration
}

// Publish starts the metrics server and the stats-file mirror that opt
// asks for; every front end (NBD, FUSE, the nbdkit plugin) calls it once
// the disk is open. stop ends them, after a last write of the mirror; it
// is safe to call more than once.
func Publish(reg *Registry, opt PublishOptions, log *slog.Logger) (stop func(), err error) {
	var stops []func()
	if opt.MetricsListen != "" {
		_, s, err := ServeMetrics(opt.MetricsListen, reg, log)
		if err != nil {
			return nil, fmt.Errorf("--metricsListen: %w", err)
		}
		stops = append(stops, s)
	}
	if opt.Mirror != "" {
		stops = append(stops, Mirror(opt.Mirror, opt.MirrorInterval, reg, log))
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for i := len(stops) - 1; i >= 0; i-- {
				stops[i]()
			}
		})
	}, nil
}
