package call

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestGateTableComplete reads gate.go: every mode's row of gateTable
// must name every sink explicitly. Pass is the zero Decision, so a sink
// left out of a row (a new sink, or a new mode's row written without the
// monitor cells) would silently pass; this test fails instead.
func TestGateTableComplete(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "gate.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var table *ast.CompositeLit
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "gateTable" || len(vs.Values) != 1 {
			return true
		}
		table, _ = vs.Values[0].(*ast.CompositeLit)
		return false
	})
	if table == nil {
		t.Fatal("gateTable not found in gate.go")
	}
	rows := 0
	for _, el := range table.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			t.Fatalf("%s: gateTable rows must be keyed by mode", fset.Position(el.Pos()))
		}
		mode := kv.Key.(*ast.Ident).Name
		row, ok := kv.Value.(*ast.CompositeLit)
		if !ok {
			t.Fatalf("row %s is not a literal", mode)
		}
		named := map[string]bool{}
		for _, cell := range row.Elts {
			ckv, ok := cell.(*ast.KeyValueExpr)
			if !ok {
				t.Fatalf("%s: row %s: cells must be keyed by sink", fset.Position(cell.Pos()), mode)
			}
			named[ckv.Key.(*ast.Ident).Name] = true
		}
		for s := Sink(0); s < numSinks; s++ {
			if !named[sinkIdent[s]] {
				t.Errorf("gateTable row %s does not name sink %s: write its decision", mode, sinkIdent[s])
			}
		}
		if len(named) != int(numSinks) {
			t.Errorf("gateTable row %s names %d sinks, want %d", mode, len(named), numSinks)
		}
		rows++
	}
	if rows != int(numModes) {
		t.Errorf("gateTable has %d rows, want one per mode (%d)", rows, numModes)
	}
}

// sinkIdent is each sink's identifier in the source.
var sinkIdent = [numSinks]string{"AgentAudio", "AgentDTMF", "CallerAudio", "Recorder", "ProtocolCapture",
	"MediaCapture", "ParticipantData", "FlowTrace", "Logs", "MonitorCaller", "MonitorAgent", "MonitorToAgent", "MonitorToCaller"}
