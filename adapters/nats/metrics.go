package natsadapter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are studyd's Prometheus instruments.
type Metrics struct {
	commands   *prometheus.CounterVec
	rejections *prometheus.CounterVec
	transient  prometheus.Counter
	latency    prometheus.Histogram
}

// NewMetrics registers studyd's instruments with reg (nil: a private registry, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "studyd_commands_total", Help: "Commands settled, by outcome (applied, duplicate, rejected).",
		}, []string{"outcome"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "studyd_rejections_total", Help: "Rejected commands, by rejection code.",
		}, []string{"code"}),
		transient: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "studyd_command_retries_total", Help: "Commands put back for a retry after a transient failure.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "studyd_command_seconds",
			Help:    "Time from receiving a command to settling it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	reg.MustRegister(m.commands, m.rejections, m.transient, m.latency)
	return m
}

// observe counts one settled command.
func (m *Metrics) observe(out Outcome, took time.Duration) {
	m.commands.WithLabelValues(out.Status).Inc()
	if out.Status == OutcomeRejected {
		m.rejections.WithLabelValues(string(out.Code)).Inc()
	}
	m.latency.Observe(took.Seconds())
}

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
			Name: "studyd_projector_tail_reopens_total", Help: "Log tails found silent while commits waited, and re-opened.",
		}, func() float64 { return float64(p.reopens.Load()) }),
	}
}
