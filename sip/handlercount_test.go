package sip

import (
	"sync"
	"testing"
	"time"
)

// TestHandlerCountStartsWhileWaiting: a handler may start while Wait is
// waiting (an INVITE taken just as shutdown begins); idle closes only
// once every handler is done. Run with -race: the WaitGroup this
// replaces was flagged for exactly this interleaving.
func TestHandlerCountStartsWhileWaiting(t *testing.T) {
	var c handlerCount
	select {
	case <-c.idle():
	default:
		t.Fatal("idle with no handler is not closed")
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(2)
		go func() { defer wg.Done(); <-c.idle() }()
		go func() { defer wg.Done(); c.add(); time.Sleep(time.Millisecond); c.done() }()
	}
	wg.Wait()

	c.add()
	idle := c.idle()
	select {
	case <-idle:
		t.Fatal("idle closed while a handler runs")
	default:
	}
	c.add()
	c.done()
	select {
	case <-idle:
		t.Fatal("idle closed with one handler still running")
	default:
	}
	c.done()
	select {
	case <-idle:
	case <-time.After(time.Second):
		t.Fatal("idle not closed after the last handler")
	}
}
