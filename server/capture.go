package server

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/capture"
	"github.com/cloak-voip/cloak/config"
	"github.com/cloak-voip/cloak/sip"
	"github.com/rs/zerolog"
)

// captureSetup opens the capture sinks the configuration asks for, unless
// pci is on.
func captureSetup(cfg config.Config, log zerolog.Logger) (call.Capture, func(), error) {
	var caps call.Capture
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			_ = c()
		}
	}
	wanted := cfg.Capture.SIPPcap || cfg.Capture.RTPPcap || cfg.Capture.HEP != ""
	if cfg.PCI {
		if wanted {
			log.Warn().Msg("pci: true — SIP and RTP capture are OFF, whatever capture: says")
		} else {
			log.Info().Msg("pci: true — SIP and RTP capture are off")
		}
		return caps, closeAll, nil
	}
	if !wanted {
		return caps, closeAll, nil
	}
	dir := filepath.Join(cfg.Data.Dir, "captures")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return caps, closeAll, fmt.Errorf("capture: %w", err)
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	var sipSinks multiSink
	if cfg.Capture.SIPPcap {
		w, err := capture.NewPcapWriter(filepath.Join(dir, "sip-"+stamp+".pcap"), capture.PcapOptions{})
		if err != nil {
			return caps, closeAll, fmt.Errorf("capture.sip_pcap: %w", err)
		}
		closers = append(closers, w.Close)
		sipSinks = append(sipSinks, w)
		log.Info().Str("file", w.Path()).Msg("SIP capture to pcap")
	}
	if cfg.Capture.HEP != "" {
		h, err := capture.NewHEPSender(cfg.Capture.HEP, capture.HEPOptions{AgentID: cfg.Capture.HEPAgentID})
		if err != nil {
			return caps, closeAll, fmt.Errorf("capture.hep: %w", err)
		}
		closers = append(closers, h.Close)
		sipSinks = append(sipSinks, h)
		log.Info().Str("collector", cfg.Capture.HEP).Msg("SIP capture to HEP")
	}
	if len(sipSinks) > 0 {
		// SDES keys (a=crypto) never reach a SIP capture.
		caps.SIP = capture.KeySafe(sipSinks)
	}
	if cfg.Capture.RTPPcap {
		w, err := capture.NewPcapWriter(filepath.Join(dir, "rtp-"+stamp+".pcap"), capture.PcapOptions{})
		if err != nil {
			return caps, closeAll, fmt.Errorf("capture.rtp_pcap: %w", err)
		}
		closers = append(closers, w.Close)
		caps.RTP = w
		log.Info().Str("file", w.Path()).Msg("RTP capture to pcap")
	}
	return caps, closeAll, nil
}

// multiSink writes to several capture sinks.
type multiSink []capture.Sink

func (m multiSink) WritePacket(ts time.Time, src, dst netip.AddrPort, proto capture.Proto, payload []byte) error {
	var first error
	for _, s := range m {
		if err := s.WritePacket(ts, src, dst, proto, payload); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// WriteMarker passes suppression markers to the sinks that take them.
func (m multiSink) WriteMarker(ts time.Time, text string) error {
	for _, s := range m {
		if mw, ok := s.(capture.MarkerWriter); ok {
			_ = mw.WriteMarker(ts, text)
		}
	}
	return nil
}

func observeFor(caps call.Capture, mgr *call.Manager) func(sip.Observed) {
	if caps.SIP == nil {
		return nil
	}
	return mgr.ObserveSIP
}
