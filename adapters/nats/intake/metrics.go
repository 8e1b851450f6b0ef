package intake

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/studyd/studyd/adapters/nats/client"
)

// Metrics are studyd's Prometheus instruments.
type Metrics struct {
	commands   *prometheus.CounterVec
	rejections *prometheus.CounterVec
	transient  prometheus.Counter
	latency    prometheus.Histogram
	failing    *prometheus.GaugeVec
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
		failing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "studyd_partition_head_failures",
			Help: "Times in a row the next command of a partition has failed (0: moving). At --poison-after the command is parked.",
		}, []string{"partition"}),
	}
	reg.MustRegister(m.commands, m.rejections, m.transient, m.latency, m.failing)
	return m
}

// observe counts one settled command.
func (m *Metrics) observe(out client.Outcome, took time.Duration) {
	m.commands.WithLabelValues(out.Status).Inc()
	if out.Status == client.OutcomeRejected {
		m.rejections.WithLabelValues(string(out.Code)).Inc()
	}
	m.latency.Observe(took.Seconds())
}

// headFailures is the gauge of how often partition n's next command has failed in a
// row.
func (m *Metrics) headFailures(n int) prometheus.Gauge {
	return m.failing.WithLabelValues(strconv.Itoa(n))
}
