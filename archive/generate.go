package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cloak-voip/cloak/call"
)

// GenerateOptions configure Generate.
type GenerateOptions struct {
	// N interactions are written (ids "gen-<Seed>-<i>", so a second run
	// with the same seed adds nothing).
	N int
	// Seed makes the data repeatable.
	Seed uint64
	// End is the newest offered time (zero: now); interactions are
	// spread evenly over the Days before it (zero: 180), oldest first, in
	// the order a real archive is written.
	End  time.Time
	Days int
	// Callers is how many distinct caller numbers there are (zero:
	// N/10, at least 1): about ten calls each.
	Callers int
	// Progress, when set, is called after each batch with the count so
	// far.
	Progress func(done int)
}

// Generator vocabulary: what a synthetic interaction draws from.
var (
	genQueues = []string{"sales", "support", "billing", "retention", "claims", "vip", "callback", "overflow", "es", "fr"}
	genRoutes = []string{"flow:main", "flow:pay", "flow:support", "queue:sales", "queue:support"}
)

// GenCaller is the caller number of synthetic caller c (the benchmark and
// tests search for it).
func GenCaller(c int) string { return fmt.Sprintf("+4477009%05d", c) }

// GenCustomer is the customer id of synthetic caller c.
func GenCustomer(c int) string { return fmt.Sprintf("C-%07d", c) }

// Generate fills the archive with o.N synthetic finished interactions for
// load tests and benchmarks (cloak archive dev-generate): caller (From
// and P-Asserted-Identity), called, route, queue (one of 10), agent (one
// of 50), times, end reason, consent, and two participant-data keys under
// the store's policy (customer_id: masked with its token by default;
// language), inserted through Insert in batches of 2,000 as the writer
// does. No trace, segment or recording: the search benchmark's rows are
// general information and data.
func (s *Store) Generate(ctx context.Context, o GenerateOptions) error {
	if o.N <= 0 {
		return fmt.Errorf("archive: generate: N must be positive")
	}
	if o.End.IsZero() {
		o.End = time.Now()
	}
	if o.Days <= 0 {
		o.Days = 180
	}
	if o.Callers <= 0 {
		o.Callers = max(o.N/10, 1)
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	span := int64(o.Days) * int64(24*time.Hour/time.Millisecond)
	const batchSize = 2000
	batch := make([]Interaction, 0, batchSize)
	for i := 0; i < o.N; i++ {
		c := rng.IntN(o.Callers)
		// In time order, as a real archive fills (the writer inserts
		// calls as they end), with a little jitter.
		step := max(span/int64(o.N), 1)
		off := o.End.Add(-time.Duration(span-int64(i)*step-rng.Int64N(step)) * time.Millisecond)
		talk := time.Duration(30+rng.IntN(600)) * time.Second
		sum := call.Summary{
			ID: fmt.Sprintf("gen-%d-%07d", o.Seed, i), SIPCallID: fmt.Sprintf("%x@gen", rng.Uint64()),
			Caller: GenCaller(c), AssertedID: GenCaller(c), Called: "main", Target: genRoutes[rng.IntN(len(genRoutes))],
			Queue: genQueues[rng.IntN(len(genQueues))], Agent: fmt.Sprintf("agent%02d", rng.IntN(50)),
			Offered: off, Answered: off.Add(time.Second), Queued: off.Add(20 * time.Second),
			AgentAnswered: off.Add(time.Duration(25+rng.IntN(120)) * time.Second), EndReason: "closed", SIPEndReason: "bye",
			Consent: call.ConsentAccepted,
			Data:    map[string]string{"customer_id": GenCustomer(c), "language": []string{"en", "fr", "de"}[rng.IntN(3)]},
		}
		sum.Ended = sum.AgentAnswered.Add(talk)
		batch = append(batch, s.FromSummary(sum, "gen"))
		if len(batch) == batchSize || i == o.N-1 {
			if err := s.Insert(ctx, batch); err != nil {
				return fmt.Errorf("archive: generate: %w", err)
			}
			batch = batch[:0]
			if o.Progress != nil {
				o.Progress(i + 1)
			}
		}
	}
	return nil
}
