package metrics

import "github.com/prometheus/client_golang/prometheus"

// TrunkSample is one trunk's state at scrape time. Trunk names come from
// the configuration, so the series' cardinality is bounded by it.
type TrunkSample struct {
	// Name is the trunk's name (trunks[].name).
	Name string
	// Registering: the trunk registers (register.enabled).
	Registering bool
	// Registered: the carrier holds cloak's binding now.
	Registered bool
	// Up is the OPTIONS keep-alive's verdict (true without keep-alive).
	Up bool
	// Calls are the outbound calls up through the trunk now.
	Calls int64
}

var (
	dTrunkRegistered = desc("cloak_trunk_registered", "1 while the carrier holds the trunk's registration, else 0 (trunks with register.enabled only).", "trunk")
	dTrunkUp         = desc("cloak_trunk_up", "1 while the trunk is up (OPTIONS keep-alive answered, or no keep-alive), else 0: outbound calls skip it.", "trunk")
	dTrunkCalls      = desc("cloak_trunk_outbound_calls", "Outbound calls up through the trunk now.", "trunk")
)

type trunkCollector struct{ src func() []TrunkSample }

// NewTrunks returns the collector of the trunks' gauges, read from src at
// each scrape.
func NewTrunks(src func() []TrunkSample) prometheus.Collector { return trunkCollector{src} }

// Describe implements prometheus.Collector.
func (trunkCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dTrunkRegistered
	ch <- dTrunkUp
	ch <- dTrunkCalls
}

// Collect implements prometheus.Collector.
func (c trunkCollector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, s := range c.src() {
		if s.Registering {
			ch <- prometheus.MustNewConstMetric(dTrunkRegistered, prometheus.GaugeValue, b(s.Registered), s.Name)
		}
		ch <- prometheus.MustNewConstMetric(dTrunkUp, prometheus.GaugeValue, b(s.Up), s.Name)
		ch <- prometheus.MustNewConstMetric(dTrunkCalls, prometheus.GaugeValue, float64(s.Calls), s.Name)
	}
}
