package disk

import (
	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/stats"
)

// Publish starts what --metricsListen and --statsFileMirror ask for, the
// same for every front end; stop ends them after a last mirror write.
func (d *Disk) Publish(cfg *config.Config) (stop func(), err error) {
	return stats.Publish(d.stats, stats.PublishOptions{
		MetricsListen:  cfg.MetricsListen,
		Mirror:         cfg.StatsFileMirror,
		MirrorInterval: cfg.StatsFileMirrorInterval,
	}, d.log)
}
