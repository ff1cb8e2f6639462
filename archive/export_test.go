package archive

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func TestExportCSVNoFormula(t *testing.T) {
	ins := []Interaction{{ID: "x1", Caller: "=HYPERLINK(\"http://evil\")", CallerName: "+cmd", Called: "-1", Route: "@SUM(A1)",
		Data: []DataItem{{Key: "k", Value: "****12"}}}}
	var b bytes.Buffer
	if err := WriteExport(&b, FormatCSV, ins); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("%v %v", rows, err)
	}
	for _, cell := range rows[1] {
		if cell != "" && (cell[0] == '=' || cell[0] == '+' || cell[0] == '-' || cell[0] == '@') {
			t.Errorf("cell %q would be a formula", cell)
		}
	}
	if err := WriteExport(&b, "pdf", ins); err == nil {
		t.Error("pdf accepted")
	}
}

// BenchmarkExportXLSX10k: 10 000 interactions (3 data keys each) read
// from SQLite with their data and written as XLSX, per op.
func BenchmarkExportXLSX10k(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "cloak.db"), testPolicy)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour)
	const n = 10000
	for lo := 0; lo < n; lo += 500 {
		var batch []Interaction
		for i := lo; i < lo+500; i++ {
			batch = append(batch, s.FromSummary(summary(fmt.Sprintf("b%05d", i), "+44"+fmt.Sprint(i), t0.Add(time.Duration(i)*time.Millisecond)), "n"))
		}
		if err := s.Insert(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		ins, err := s.ExportRows(ctx, Query{})
		if err != nil || len(ins) != n {
			b.Fatalf("%d rows, %v", len(ins), err)
		}
		var out bytes.Buffer
		if err := WriteExport(&out, FormatXLSX, ins); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(out.Len()), "bytes")
	}
}
