package call

import (
	"strings"
	"time"

	"github.com/cloak-voip/cloak/dtmf"
)

// This file is the agent's in-call feature codes (secure referral,
// recording pause), read from the agent leg's digits.

// onAgentDigit handles a key from the agent: feature codes ("*7" sends the
// caller into the secure flow, "*9" pauses or resumes the recording).
// Agent keys are never forwarded to the caller.
func (c *Interaction) onAgentDigit(d byte, _ dtmf.Source) {
	c.mu.Lock()
	now := time.Now()
	if now.Sub(c.agentKeyAt) > 3*time.Second {
		c.agentKeys = c.agentKeys[:0]
	}
	c.agentKeyAt = now
	c.agentKeys = append(c.agentKeys, d)
	if len(c.agentKeys) > 8 {
		c.agentKeys = c.agentKeys[len(c.agentKeys)-8:]
	}
	keys := string(c.agentKeys)
	secure := c.m.cfg.SecureCode != "" && c.m.cfg.SecureFlow != "" && strings.HasSuffix(keys, c.m.cfg.SecureCode)
	record := c.m.cfg.RecordCode != "" && strings.HasSuffix(keys, c.m.cfg.RecordCode)
	payment := c.m.cfg.PaymentCode != "" && strings.HasSuffix(keys, c.m.cfg.PaymentCode)
	if secure || record || payment {
		c.agentKeys = c.agentKeys[:0]
	}
	c.mu.Unlock()
	switch {
	case secure:
		if err := c.RequestSecure(c.m.cfg.SecureFlow, "feature-code"); err != nil {
			c.log.Info().Err(err).Msg("feature code refused")
		}
	case record:
		c.toggleAgentPause()
	case payment:
		go c.paymentByCode() // off the agent leg's reader: StartPayment takes locks and publishes
	}
}

// Participant-data keys a payment opened by the feature code takes its
// amount, currency and reference from (the flow's set_data steps).
const (
	DataPaymentAmount    = "payment_amount"
	DataPaymentCurrency  = "payment_currency"
	DataPaymentReference = "payment_reference"
)

// paymentByCode opens an agent-assisted payment for the amount, currency
// and reference in the call's participant data: the agent keyed the
// payment code (docs/PAYMENTS.md). A refusal (no amount, not bridged, a
// payment already open, a referral under way) is logged and published as
// a "payment_refused" event, so the agent's desk can say why.
func (c *Interaction) paymentByCode() {
	d := c.Data()
	p, err := c.StartPayment(PaymentRequest{Amount: d[DataPaymentAmount], Currency: d[DataPaymentCurrency], Reference: d[DataPaymentReference]})
	if err != nil {
		c.log.Info().Err(err).Msg("payment code refused")
		c.publish(Event{Type: "payment_refused", Reason: err.Error()})
		return
	}
	c.log.Info().Str("payment", p.ID()).Msg("payment opened by the agent's feature code")
}

// toggleAgentPause pauses the recording for the agent, or resumes it.
func (c *Interaction) toggleAgentPause() {
	rec := c.rec.Load()
	if rec == nil {
		return
	}
	c.mu.Lock()
	c.agentPaused = !c.agentPaused
	paused := c.agentPaused
	c.mu.Unlock()
	var err error
	if paused {
		err = c.PauseRecording("agent")
	} else {
		err = c.ResumeRecording("agent")
	}
	c.log.Info().Bool("paused", paused).Err(err).Msg("agent toggled the recording")
}
