package metrics

import (
	"time"

	"github.com/cloak-voip/cloak/media"
	"github.com/cloak-voip/cloak/recorder"
	"github.com/prometheus/client_golang/prometheus"
)

// Calls counts the call layer's events; it implements call.Metrics.
// Every method is a few atomic adds on a labelled child (a map look-up
// under a read lock), called once per call, segment, digit or wait.
type Calls struct {
	active       *prometheus.GaugeVec
	started      *prometheus.CounterVec
	ended        *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	answer       *prometheus.HistogramVec
	secStarted   *prometheus.CounterVec
	secEnded     *prometheus.CounterVec
	secActive    prometheus.Gauge
	secDuration  *prometheus.HistogramVec
	digits       *prometheus.CounterVec
	queueWaiting *prometheus.GaugeVec
	queueWait    *prometheus.HistogramVec
	recordings   prometheus.Counter
	recWritten   prometheus.Counter
	recSilenced  prometheus.Counter
	recDropped   prometheus.Counter
	recPaused    prometheus.Counter
	legMOS       *prometheus.HistogramVec
	legLoss      *prometheus.HistogramVec
	legJitter    *prometheus.HistogramVec
	legRTT       *prometheus.HistogramVec
	all          []prometheus.Collector
}

// NewCalls returns the call layer's series, to hand to call.Config
// before the rest of the node (and New) exists.
func NewCalls() *Calls {
	c := &Calls{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloak_calls_active",
			Help: "Calls in progress, by route (the target configured for the called user part)."}, []string{"route"}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloak_calls_started_total",
			Help: "Calls taken, by route."}, []string{"route"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloak_calls_total",
			Help: "Calls ended, by route and ending (caller_hangup, agent_hangup, flow_finished, rtp_timeout, shutdown, ...)."}, []string{"route", "ending"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cloak_call_duration_seconds",
			Help:    "Time from taking a call to its end, by route.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600}}, []string{"route"}),
		answer: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cloak_call_answer_seconds",
			Help:    "Time from taking a call to answering it (cloak's own set-up: RTP port, media address, recording admission), by route.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}}, []string{"route"}),
		secStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloak_secure_segments_started_total",
			Help: "Secure segments begun, by flow."}, []string{"flow"}),
		secEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloak_secure_segments_ended_total",
			Help: "Secure segments ended, by flow and outcome (left: the flow left it; call_ended: the call ended inside it)."}, []string{"flow", "outcome"}),
		secActive: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cloak_secure_segments_active",
			Help: "Secure segments in progress."}),
		secDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cloak_secure_segment_duration_seconds",
			Help:    "Length of secure segments, by flow.",
			Buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600}}, []string{"flow"}),
		digits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloak_dtmf_digits_total",
			Help: "Digits counted, by source (rfc4733, inband, info); counts only, never values."}, []string{"source"}),
		queueWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloak_queue_waiting_calls",
			Help: "Callers waiting in a queue now, by queue."}, []string{"queue"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cloak_queue_wait_seconds",
			Help:    "Time callers waited in a queue, by queue and outcome (answered, timeout, abandoned).",
			Buckets: []float64{1, 5, 10, 20, 30, 60, 120, 300, 600}}, []string{"queue", "outcome"}),
		recordings: prometheus.NewCounter(prometheus.CounterOpts{Name: "cloak_recordings_total",
			Help: "Recordings closed."}),
		recWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "cloak_recorder_frames_written_total",
			Help: "Audio frames written to recordings, counted when each recording closes."}),
		recSilenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "cloak_recorder_frames_silenced_total",
			Help: "Frames written as silence while a recording was paused, counted when each recording closes."}),
		recDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "cloak_recorder_frames_dropped_total",
			Help: "Frames lost because the writer's queue was full, counted when each recording closes."}),
		recPaused: prometheus.NewCounter(prometheus.CounterOpts{Name: "cloak_recorder_paused_seconds_total",
			Help: "Time recordings spent paused, counted when each recording closes."}),
		legMOS: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cloak_rtp_leg_mos",
			Help:    "Estimated MOS (ITU-T G.107 E-model for G.711) of each ended leg's received stream, by leg (caller, agent).",
			Buckets: []float64{1.5, 2, 2.5, 3, 3.3, 3.6, 3.9, 4.1, 4.3, 4.4}}, []string{"leg"}),
		legLoss: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cloak_rtp_leg_loss_ratio",
			Help:    "Share of the peer's RTP packets lost on each ended leg (RFC 3550 A.3), by leg.",
			Buckets: []float64{0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2}}, []string{"leg"}),
		legJitter: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cloak_rtp_leg_jitter_seconds",
			Help:    "Interarrival jitter (RFC 3550 A.8) of each ended leg's received stream, by leg.",
			Buckets: []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16}}, []string{"leg"}),
		legRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cloak_rtp_leg_rtt_seconds",
			Help:    "Round-trip time from RTCP (RFC 3550 §6.4.1) of each ended leg whose peer reported one, by leg.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8}}, []string{"leg"}),
	}
	c.all = []prometheus.Collector{c.active, c.started, c.ended, c.duration, c.answer, c.secStarted, c.secEnded, c.secActive,
		c.secDuration, c.digits, c.queueWaiting, c.queueWait, c.recordings, c.recWritten, c.recSilenced, c.recDropped, c.recPaused,
		c.legMOS, c.legLoss, c.legJitter, c.legRTT}
	return c
}

// Describe implements prometheus.Collector.
func (c *Calls) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.all {
		m.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *Calls) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.all {
		m.Collect(ch)
	}
}

// CallStarted implements call.Metrics.
func (c *Calls) CallStarted(route string) {
	c.active.WithLabelValues(route).Inc()
	c.started.WithLabelValues(route).Inc()
}

// CallAnswered implements call.Metrics.
func (c *Calls) CallAnswered(route string, d time.Duration) {
	c.answer.WithLabelValues(route).Observe(d.Seconds())
}

// CallEnded implements call.Metrics.
func (c *Calls) CallEnded(route, ending string, d time.Duration) {
	c.active.WithLabelValues(route).Dec()
	c.ended.WithLabelValues(route, ending).Inc()
	c.duration.WithLabelValues(route).Observe(d.Seconds())
}

// SecureStarted implements call.Metrics.
func (c *Calls) SecureStarted(flow string) {
	c.secStarted.WithLabelValues(flow).Inc()
	c.secActive.Inc()
}

// SecureEnded implements call.Metrics.
func (c *Calls) SecureEnded(flow, outcome string, d time.Duration) {
	c.secEnded.WithLabelValues(flow, outcome).Inc()
	c.secActive.Dec()
	c.secDuration.WithLabelValues(flow).Observe(d.Seconds())
}

// Digit implements call.Metrics: the source, never the digit.
func (c *Calls) Digit(source string) { c.digits.WithLabelValues(source).Inc() }

// QueueJoined implements call.Metrics.
func (c *Calls) QueueJoined(queue string) { c.queueWaiting.WithLabelValues(queue).Inc() }

// QueueLeft implements call.Metrics.
func (c *Calls) QueueLeft(queue, outcome string, wait time.Duration) {
	c.queueWaiting.WithLabelValues(queue).Dec()
	c.queueWait.WithLabelValues(queue, outcome).Observe(wait.Seconds())
}

// RecordingClosed implements call.Metrics.
func (c *Calls) RecordingClosed(st recorder.Stats) {
	c.recordings.Inc()
	c.recWritten.Add(float64(st.Written))
	c.recSilenced.Add(float64(st.Silenced))
	c.recDropped.Add(float64(st.Dropped))
	c.recPaused.Add(st.Paused.Seconds())
}

// LegEnded implements call.Metrics: the ended leg's quality into the
// histograms (RTT only when the peer's RTCP gave one).
func (c *Calls) LegEnded(leg string, q media.Quality) {
	c.legMOS.WithLabelValues(leg).Observe(q.MOS)
	c.legLoss.WithLabelValues(leg).Observe(max(q.LossPercent, 0) / 100)
	c.legJitter.WithLabelValues(leg).Observe(q.JitterMs / 1000)
	if q.RTTMs >= 0 {
		c.legRTT.WithLabelValues(leg).Observe(q.RTTMs / 1000)
	}
}
