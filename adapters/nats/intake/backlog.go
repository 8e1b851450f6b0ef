package intake

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/studyd/studyd/adapters/nats/client"
)

// scrapeTimeout bounds the JetStream requests of one scrape.
const scrapeTimeout = 5 * time.Second

var backlogDesc = prometheus.NewDesc("studyd_command_backlog",
	"Commands waiting in STUDYD_CMDS per partition: not yet delivered plus in flight (read from the partition's consumer at scrape time).",
	[]string{"partition"}, nil)

// backlogCollector reports each partition's backlog when scraped.
type backlogCollector struct {
	js         jetstream.JetStream
	partitions int
}

// BacklogCollector reports studyd_command_backlog{partition} for partitions 0..n-1,
// read from their consumers on each scrape. A partition whose consumer cannot be
// read (it does not exist yet) is left out.
func BacklogCollector(js jetstream.JetStream, partitions int) prometheus.Collector {
	return &backlogCollector{js: js, partitions: partitions}
}

func (b *backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc }

func (b *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	for n := range b.partitions {
		cons, err := b.js.Consumer(ctx, client.CommandsStream, PartitionConsumer(n))
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue,
			float64(info.NumPending+uint64(info.NumAckPending)), strconv.Itoa(n))
	}
}
