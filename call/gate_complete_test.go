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
	sinks := constsBefore(f, "numSinks")
	if len(sinks) != int(numSinks) {
		t.Fatalf("read %d sinks from gate.go (%v), numSinks is %d", len(sinks), sinks, numSinks)
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
		for _, s := range sinks {
			if !named[s] {
				t.Errorf("gateTable row %s does not name sink %s: write its decision", mode, s)
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

// constsBefore returns the names of the constants declared before end
// in the const block that declares end (the Sink block for numSinks).
func constsBefore(f *ast.File, end string) []string {
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		var names []string
		for _, sp := range gd.Specs {
			for _, n := range sp.(*ast.ValueSpec).Names {
				if n.Name == end {
					return names
				}
				names = append(names, n.Name)
			}
		}
	}
	return nil
}
