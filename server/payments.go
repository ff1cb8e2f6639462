package server

import (
	"github.com/cloak-voip/cloak/call"
	"github.com/cloak-voip/cloak/config"
)

// paymentConfig is the call package's view of payments: (agent-assisted
// payments, docs/PAYMENTS.md).
func paymentConfig(p config.Payments) call.PaymentConfig {
	return call.PaymentConfig{Timeout: p.Timeout, MaskTone: p.MaskTone, InterDigitTimeout: p.InterDigitTimeout, Fraud: p.Fraud,
		Attempts: p.Attempts}
}
