package views

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ProjectorCollectors exports p's state: the log sequence the views reflect, whether
// this instance writes them, and the faults it rode out. An operator compares the first
// with the stream's last sequence to see how far the views lag.
func ProjectorCollectors(p *Projector) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "studyd_projection_seq", Help: "The STUDYD_EVENTS sequence the views reflect, as this instance last saw it.",
		}, func() float64 { return float64(p.Seq()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "studyd_projector_leading", Help: "1 while this instance holds the projector lease and writes the views.",
		}, func() float64 {
			if p.Leading() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "studyd_projector_faults_total", Help: "Projector terms ended by a fault (lost lease, failed write or read); each resumes from the checkpoint.",
		}, func() float64 { return float64(p.faults.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "studyd_projector_unfoldable_total", Help: "Records the projector could not fold whole (undecodable: passed over; a time no view can render: totals only), each logged with its seq.",
		}, func() float64 { return float64(p.unfoldable.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "studyd_projector_tail_reopens_total", Help: "Log tails found silent while commits waited, and re-opened.",
		}, func() float64 { return float64(p.reopens.Load()) }),
	}
}
