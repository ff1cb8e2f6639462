package call

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sinkFeeds are the calls and assignments by which this package hands
// call data to a sink: the recorder, RTP/SIP capture, the other leg
// (agent or caller audio and DTMF), participant data and the flow trace.
var sinkFeeds = map[string]Sink{
	"WriteCaller":    Recorder,
	"WriteAgent":     Recorder,
	"WriteCompanded": Recorder,
	"WritePacket":    MediaCapture, // or ProtocolCapture
	"Forward":        AgentAudio,   // or AgentDTMF, CallerAudio
	"WriteAudio":     AgentAudio,   // or CallerAudio
	"WriteEvent":     AgentDTMF,
	"c.data":         ParticipantData,
	"c.trace":        FlowTrace,
}

// gateExempt are functions that feed a sink without calling Route, each
// with the reason the gate is still obeyed. Keep it short.
var gateExempt = map[string]string{
	// The call's CallCapture carries the gate's decision: applySinks
	// suppresses it when Route blocks ProtocolCapture, and it drops
	// every message while suppressed.
	"ObserveSIP": "SIP capture through the call's CallCapture, which applySinks sets by Route",
}

// TestEverySinkAsksTheGate reads this package's source: every function
// that hands data to a sink (sinkFeeds) must ask the gate (call Route)
// in the same function, or be listed in gateExempt with its reason. A
// new sink fed without asking fails here (docs/ARCHITECTURE.md, "The
// secure gate").
func TestEverySinkAsksTheGate(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			feeds, asks := sinkUse(fn.Body)
			if len(feeds) == 0 {
				continue
			}
			checked++
			if _, ok := gateExempt[fn.Name.Name]; ok {
				continue
			}
			if !asks {
				t.Errorf("%s: %s feeds %v without asking the gate (call Route, or list it in gateExempt with the reason)",
					fset.Position(fn.Pos()), fn.Name.Name, feeds)
			}
		}
	}
	if checked < 6 {
		t.Fatalf("found only %d functions feeding sinks: is sinkFeeds still right?", checked)
	}
}

// sinkUse lists the sinks body feeds and whether it calls Route.
func sinkUse(body *ast.BlockStmt) (feeds []Sink, asks bool) {
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch fun := n.Fun.(type) {
			case *ast.Ident:
				if fun.Name == "Route" {
					asks = true
				}
			case *ast.SelectorExpr:
				if s, ok := sinkFeeds[fun.Sel.Name]; ok {
					feeds = append(feeds, s)
				}
			}
		case *ast.AssignStmt:
			for _, lhs := range n.Lhs {
				if s, ok := sinkFeeds[exprName(lhs)]; ok {
					feeds = append(feeds, s)
				}
			}
		}
		return true
	})
	return feeds, asks
}

// exprName names c.data[k] and c.trace as "c.data" and "c.trace".
func exprName(e ast.Expr) string {
	if ix, ok := e.(*ast.IndexExpr); ok {
		e = ix.X
	}
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return ""
	}
	return id.Name + "." + sel.Sel.Name
}
