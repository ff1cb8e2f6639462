package call

import "testing"

// TestGateTable pins every (mode × sink) decision of the secure gate.
func TestGateTable(t *testing.T) {
	want := map[Mode]map[Sink]Decision{
		Normal: {
			AgentAudio: Pass, AgentDTMF: Pass, CallerAudio: Pass, Recorder: Pass, ProtocolCapture: Pass,
			MediaCapture: Pass, ParticipantData: Pass, FlowTrace: Pass, Logs: Mask,
			MonitorCaller: Mask, MonitorAgent: Pass, MonitorToAgent: Pass, MonitorToCaller: Pass,
		},
		Referred: {
			AgentAudio: Block, AgentDTMF: Block, CallerAudio: Block, Recorder: Pass, ProtocolCapture: Pass,
			MediaCapture: Pass, ParticipantData: Pass, FlowTrace: Pass, Logs: Mask,
			MonitorCaller: Block, MonitorAgent: Block, MonitorToAgent: Block, MonitorToCaller: Block,
		},
		Secure: {
			AgentAudio: Block, AgentDTMF: Block, CallerAudio: Block, Recorder: Block, ProtocolCapture: Block,
			MediaCapture: Block, ParticipantData: Block, FlowTrace: Mask, Logs: Mask,
			MonitorCaller: Block, MonitorAgent: Block, MonitorToAgent: Block, MonitorToCaller: Block,
		},
		Payment: {
			AgentAudio: Mask, AgentDTMF: Block, CallerAudio: Pass, Recorder: Block, ProtocolCapture: Block,
			MediaCapture: Block, ParticipantData: Block, FlowTrace: Mask, Logs: Mask,
			MonitorCaller: Block, MonitorAgent: Block, MonitorToAgent: Block, MonitorToCaller: Block,
		},
	}
	n := 0
	for mode := Mode(0); mode < numModes; mode++ {
		for sink := Sink(0); sink < numSinks; sink++ {
			w, ok := want[mode][sink]
			if !ok {
				t.Fatalf("no expectation for (%s, %s): add it", mode, sink)
			}
			if got := Route(mode, sink); got != w {
				t.Errorf("Route(%s, %s) = %s, want %s", mode, sink, got, w)
			}
			n++
		}
	}
	if n != int(numModes)*int(numSinks) {
		t.Fatalf("covered %d pairs, want %d", n, int(numModes)*int(numSinks))
	}
}

func TestGateFailsClosed(t *testing.T) {
	if Route(Mode(9), Recorder) != Block || Route(Secure, Sink(42)) != Block || Route(Normal, Sink(42)) != Block {
		t.Fatal("unknown mode or sink must block")
	}
}

func TestSecureModeNeverPassesSensitiveSinks(t *testing.T) {
	for sink := Sink(0); sink < numSinks; sink++ {
		if Route(Secure, sink) == Pass {
			t.Errorf("secure mode passes %s in clear", sink)
		}
	}
	for _, m := range []Mode{Normal, Referred, Secure, Payment} {
		if Route(m, Logs) == Pass {
			t.Errorf("%s mode passes digits to the logs", m)
		}
	}
	for sink := Sink(0); sink < numSinks; sink++ {
		if sink != CallerAudio && Route(Payment, sink) == Pass {
			t.Errorf("payment mode passes %s in clear", sink)
		}
	}
	if maskDigit(Normal, '5') != "*" || maskDigit(Secure, '5') != "*" {
		t.Error("a digit reached a log line as text")
	}
}
