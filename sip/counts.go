package sip

import (
	"sync/atomic"

	siplib "github.com/emiago/sipgo/sip"
)

// countedMethods are the request methods counted by name in
// Stats.Requests; any other method (a peer may send anything) is counted
// as "other", so the set of keys stays bounded.
var countedMethods = [...]siplib.RequestMethod{siplib.INVITE, siplib.ACK, siplib.BYE, siplib.CANCEL,
	siplib.OPTIONS, siplib.INFO, siplib.REFER, siplib.REGISTER, siplib.NOTIFY, siplib.SUBSCRIBE,
	siplib.MESSAGE, siplib.PRACK, siplib.UPDATE, siplib.PUBLISH}

// messageCounts counts requests received by method and responses sent by
// status code (100-699), in fixed arrays of atomics: one add per SIP
// message, no lock, no allocation, a bounded key set.
type messageCounts struct {
	methods [len(countedMethods) + 1]atomic.Uint64 // last: other
	codes   [600]atomic.Uint64                     // 100..699
}

func (c *messageCounts) request(m siplib.RequestMethod) {
	for i, cm := range countedMethods {
		if cm == m {
			c.methods[i].Add(1)
			return
		}
	}
	c.methods[len(countedMethods)].Add(1)
}

func (c *messageCounts) response(code int) {
	if code >= 100 && code <= 699 {
		c.codes[code-100].Add(1)
	}
}

func (c *messageCounts) snapshot() (map[string]uint64, map[int]uint64) {
	req := map[string]uint64{}
	for i := range c.methods {
		if n := c.methods[i].Load(); n > 0 {
			name := "other"
			if i < len(countedMethods) {
				name = string(countedMethods[i])
			}
			req[name] = n
		}
	}
	res := map[int]uint64{}
	for i := range c.codes {
		if n := c.codes[i].Load(); n > 0 {
			res[i+100] = n
		}
	}
	return req, res
}
