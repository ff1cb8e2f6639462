package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloak-voip/cloak/sdes"
	csip "github.com/cloak-voip/cloak/sip"
	"github.com/emiago/sipgo"
	siplib "github.com/emiago/sipgo/sip"
)

// A placer sets calls up and down; the engine paces it and keeps the
// streams. Three kinds: SIP into cloak (with an agent UAS when cloak calls
// out), rtpengine over ng, and the bench's floor relay.
type placer interface {
	// place sets up call idx and starts its streams.
	place(ctx context.Context, idx int) (liveCall, error)
	close()
}

// liveCall is one established call.
type liveCall interface {
	// ended is closed when the far end hangs up.
	ended() <-chan struct{}
	// hangup ends the call from our side and stops its streams.
	hangup(ctx context.Context) error
}

// ---- SIP -----------------------------------------------------------------

type sipPlacer struct {
	e      *engine
	target netip.AddrPort
	user   string
	ua     *sipgo.UserAgent
	dc     *sipgo.DialogClientCache
	cancel context.CancelFunc

	agentUA *sipgo.UserAgent
	agents  agentStats
}

type agentStats struct {
	invites  atomic.Int64
	answered atomic.Int64
	ended    atomic.Int64
	failed   atomic.Int64
}

func newSIPPlacer(e *engine, target, local, agent, user string) (*sipPlacer, error) {
	tp, err := netip.ParseAddrPort(target)
	if err != nil {
		return nil, fmt.Errorf("-target: %w", err)
	}
	lp, err := netip.ParseAddrPort(local)
	if err != nil {
		return nil, fmt.Errorf("-sip-local: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &sipPlacer{e: e, target: tp, user: user, cancel: cancel}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("cloak-load"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		cancel()
		return nil, err
	}
	p.ua = ua
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(local))
	if err != nil {
		cancel()
		return nil, err
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		cancel()
		return nil, err
	}
	p.dc = sipgo.NewDialogClientCache(cli, siplib.ContactHeader{Address: siplib.Uri{User: "load", Host: "127.0.0.1", Port: int(lp.Port())}})
	srv.OnBye(func(req *siplib.Request, tx siplib.ServerTransaction) {
		if err := p.dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(siplib.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	if err := listen(ctx, srv, local); err != nil {
		cancel()
		return nil, err
	}
	if agent != "" {
		if err := p.startAgent(ctx, agent); err != nil {
			cancel()
			return nil, err
		}
	}
	return p, nil
}

// listen starts a sipgo server on UDP and waits until it is ready.
func listen(ctx context.Context, srv *sipgo.Server, addr string) error {
	ready := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- srv.ListenAndServe(context.WithValue(ctx, sipgo.ListenReadyCtxKey, sipgo.ListenReadyCtxValue(ready)), "udp", addr)
	}()
	select {
	case <-ready:
	case err := <-errc:
		return fmt.Errorf("listen %s: %w", addr, err)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("listen %s: not ready", addr)
	}
	// sipgo signals ready just before it registers the socket for
	// outgoing requests.
	time.Sleep(50 * time.Millisecond)
	return nil
}

// startAgent answers INVITEs cloak sends to agents: 200 with our SDP, then
// a stream both ways until BYE.
func (p *sipPlacer) startAgent(ctx context.Context, addr string) error {
	// With -srtp the agent accepts RTP/SAVP and answers with a key of its
	// own (keys over plain SIP: the bench is on loopback), in the one
	// suite -srtp-suite names, so both legs of a call use it: cloak
	// offers every suite it speaks, and an answerer by preference would
	// take GCM whatever the caller leg uses (until session 12 the agent
	// took cloak's first line, AES-CM-80, whatever -srtp-suite said).
	pol := csip.DialogSRTP{}
	if p.e.o.srtp {
		pol = csip.DialogSRTP{Mode: csip.SRTPOptional, Keys: true, Suites: sdes.Order{p.e.o.srtpSuite}}
	}
	ua, err := startUAS(ctx, addr, "agent", &p.agents, pol, func(*csip.Offer) (int, int) {
		id := p.e.nextStreamID()
		return p.e.agentGroup(id).conn.port(), id
	}, func(offer *csip.Offer, id int, done <-chan struct{}) error {
		g := p.e.agentGroup(id)
		ours, theirs := offer.Media.SRTP.Keys()
		s, err := p.e.addStreamSRTP(id, g, offer.Media.Remote, offer.Media.EventPT, false, ours, theirs)
		if err != nil {
			return err
		}
		<-done
		g.remove(s)
		return nil
	})
	if err != nil {
		return err
	}
	p.agentUA = ua
	return nil
}

// startUAS runs a UAS on addr (Contact user) that answers every INVITE:
// pick gives the RTP port and a session id for the offer, the answer goes
// out in a 200, and live runs from then until the dialog ends (done).
// st counts the INVITEs and how they went.
// pol is the SRTP policy of the offers it accepts (csip.DialogSRTP{}:
// plain RTP only); live's error fails the call and hangs it up.
func startUAS(ctx context.Context, addr, user string, st *agentStats, pol csip.DialogSRTP, pick func(*csip.Offer) (port, id int),
	live func(offer *csip.Offer, id int, done <-chan struct{}) error) (*sipgo.UserAgent, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s address: %w", user, err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("cloak-load-"+user), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		return nil, err
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(addr))
	if err != nil {
		ua.Close()
		return nil, err
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		ua.Close()
		return nil, err
	}
	dsc := sipgo.NewDialogServerCache(cli, siplib.ContactHeader{Address: siplib.Uri{User: user, Host: "127.0.0.1", Port: int(ap.Port())}})
	srv.OnInvite(func(req *siplib.Request, tx siplib.ServerTransaction) {
		st.invites.Add(1)
		d, err := dsc.ReadInvite(req, tx)
		if err != nil {
			st.failed.Add(1)
			return
		}
		offer, err := csip.ParseOfferSRTP(req.Body(), pol, nil)
		if err != nil {
			st.failed.Add(1)
			_ = d.Respond(488, "Not Acceptable Here", nil)
			return
		}
		port, id := pick(offer)
		ans, err := offer.Answer(csip.LocalSDP{Addr: netip.MustParseAddr("127.0.0.1"), Port: port, SessionID: uint64(id) + 1, Version: 1})
		if err != nil {
			st.failed.Add(1)
			_ = d.Respond(488, "Not Acceptable Here", nil)
			return
		}
		if err := d.Respond(200, "OK", ans, siplib.NewHeader("Content-Type", "application/sdp")); err != nil {
			st.failed.Add(1)
			return
		}
		st.answered.Add(1)
		if err := live(offer, id, d.Context().Done()); err != nil {
			st.failed.Add(1)
			_ = d.Bye(context.Background())
			return
		}
		st.ended.Add(1)
	})
	srv.OnAck(func(req *siplib.Request, tx siplib.ServerTransaction) { _ = dsc.ReadAck(req, tx) })
	srv.OnBye(func(req *siplib.Request, tx siplib.ServerTransaction) {
		if err := dsc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(siplib.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	if err := listen(ctx, srv, addr); err != nil {
		ua.Close()
		return nil, err
	}
	return ua, nil
}

type sipCall struct {
	d *sipgo.DialogClientSession
	s *stream
}

func (c *sipCall) ended() <-chan struct{} { return c.d.Context().Done() }

func (c *sipCall) hangup(ctx context.Context) error {
	c.s.group.remove(c.s)
	select {
	case <-c.d.Context().Done():
		return nil // the far end hung up first
	default:
	}
	err := c.d.Bye(ctx)
	_ = c.d.Close()
	return err
}

func (p *sipPlacer) place(ctx context.Context, idx int) (liveCall, error) {
	id := p.e.nextStreamID()
	g := p.e.callerGroup(id)
	body := []byte(plainSDP(g.conn.port(), id+1))
	var offered []sdes.Crypto
	if p.e.o.srtp {
		k, err := sdes.NewKey(p.e.o.srtpSuite)
		if err != nil {
			return nil, err
		}
		offered = []sdes.Crypto{{Tag: 1, Key: k}}
		body = []byte(srtpSDP(g.conn.port(), id+1, offered[0]))
	}
	uri := siplib.Uri{User: p.user, Host: p.target.Addr().String(), Port: int(p.target.Port())}
	d, err := p.dc.Invite(ctx, uri, body, siplib.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		return nil, err
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		_ = d.Close()
		var re *sipgo.ErrDialogResponse
		if errors.As(err, &re) {
			return nil, fmt.Errorf("INVITE: %d %s", re.Res.StatusCode, re.Res.Reason)
		}
		return nil, err
	}
	ans, err := csip.ParseAnswerSRTP(d.InviteResponse.Body(), offered)
	if err != nil {
		_ = d.Ack(ctx)
		_ = d.Bye(ctx)
		return nil, fmt.Errorf("answer SDP: %w", err)
	}
	if err := d.Ack(ctx); err != nil {
		return nil, fmt.Errorf("ACK: %w", err)
	}
	var tx, rx *sdes.Key
	if p.e.o.srtp {
		if ans.SRTP == nil {
			_ = d.Bye(ctx)
			return nil, fmt.Errorf("answer SDP: plain RTP to an SRTP offer")
		}
		tx, rx = offered[0].Key, ans.SRTP.Remote
	}
	s, err := p.e.addStreamSRTP(id, g, ans.Remote, ans.EventPT, true, tx, rx)
	if err != nil {
		_ = d.Bye(ctx)
		return nil, err
	}
	return &sipCall{d: d, s: s}, nil
}

func (p *sipPlacer) close() {
	p.cancel()
	p.ua.Close()
	if p.agentUA != nil {
		p.agentUA.Close()
	}
}

// ---- rtpengine over ng ------------------------------------------------------

type ngPlacer struct {
	e        *engine
	ng       *ngClient
	security string // DTMF-security mode for "block DTMF"; "" = plain relay
	flags    []string
}

type relayCall struct {
	caller, agent *stream
	done          chan struct{}
	down          func(ctx context.Context) error
}

func (c *relayCall) ended() <-chan struct{} { return c.done }

func (c *relayCall) hangup(ctx context.Context) error {
	c.caller.group.remove(c.caller)
	c.agent.group.remove(c.agent)
	if c.down != nil {
		return c.down(ctx)
	}
	return nil
}

func (p *ngPlacer) place(ctx context.Context, idx int) (liveCall, error) {
	cid := p.e.nextStreamID()
	aid := p.e.nextStreamID()
	cg, ag := p.e.callerGroup(cid), p.e.agentGroup(aid)
	callID := fmt.Sprintf("cloak-load-%d-%d", os.Getpid(), idx)
	from, to := fmt.Sprintf("c%d", idx), fmt.Sprintf("a%d", idx)
	const timeout = 5 * time.Second
	offer := map[string]any{"command": "offer", "call-id": callID, "from-tag": from, "sdp": plainSDP(cg.conn.port(), cid+1),
		"ICE": "remove", "replace": []string{"origin", "session-connection"}}
	if len(p.flags) > 0 {
		offer["flags"] = p.flags
	}
	r, err := p.ng.call(offer, timeout)
	if err != nil {
		return nil, err
	}
	sdp, _ := r["sdp"].(string)
	towardsAgent, err := portOf(sdp)
	if err != nil {
		return nil, err
	}
	r, err = p.ng.call(map[string]any{"command": "answer", "call-id": callID, "from-tag": from, "to-tag": to,
		"sdp": plainSDP(ag.conn.port(), aid+1), "ICE": "remove", "replace": []string{"origin", "session-connection"}}, timeout)
	if err != nil {
		return nil, err
	}
	sdp, _ = r["sdp"].(string)
	towardsCaller, err := portOf(sdp)
	if err != nil {
		return nil, err
	}
	if p.security != "" {
		if _, err := p.ng.call(map[string]any{"command": "block DTMF", "call-id": callID, "from-tag": from, "DTMF-security": p.security}, timeout); err != nil {
			return nil, err
		}
	}
	lo := netip.MustParseAddr("127.0.0.1")
	c := &relayCall{done: make(chan struct{})}
	c.caller = p.e.addStream(cid, cg, netip.AddrPortFrom(lo, uint16(towardsCaller)), 101, true)
	c.agent = p.e.addStream(aid, ag, netip.AddrPortFrom(lo, uint16(towardsAgent)), 101, false)
	c.down = func(ctx context.Context) error {
		_, err := p.ng.call(map[string]any{"command": "delete", "call-id": callID, "from-tag": from}, timeout)
		return err
	}
	return c, nil
}

func (p *ngPlacer) close() { p.ng.close() }

// ---- the floor relay ---------------------------------------------------------

// floorPlacer uses bench/floor's fixed layout: pair i listens on base+4i
// (caller side) and base+4i+2 (agent side) and latches onto whoever sends.
type floorPlacer struct {
	e     *engine
	base  netip.AddrPort
	pairs int
	mu    sync.Mutex
	next  int
}

func (p *floorPlacer) place(ctx context.Context, idx int) (liveCall, error) {
	p.mu.Lock()
	i := p.next
	p.next++
	p.mu.Unlock()
	if i >= p.pairs {
		return nil, fmt.Errorf("floor: only %d pairs (-floor-pairs)", p.pairs)
	}
	cid := p.e.nextStreamID()
	aid := p.e.nextStreamID()
	a := p.base.Addr()
	port := int(p.base.Port()) + 4*i
	c := &relayCall{done: make(chan struct{})}
	c.caller = p.e.addStream(cid, p.e.callerGroup(cid), netip.AddrPortFrom(a, uint16(port)), 101, true)
	c.agent = p.e.addStream(aid, p.e.agentGroup(aid), netip.AddrPortFrom(a, uint16(port+2)), 101, false)
	return c, nil
}

func (p *floorPlacer) close() {}
