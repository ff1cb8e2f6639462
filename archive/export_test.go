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

func TestCallerIdentityStoredAndAnonymised(t *testing.T) {
	engines(t, testPolicy, func(t *testing.T, s *Store) {
		ctx := context.Background()
		sum := summary("pai1", "+441234", time.Now())
		sum.CallerName, sum.AssertedID, sum.AssertedName = "Alice Smith", "+449999", "Alice S"
		other := summary("pai2", "anonymous", time.Now())
		other.CallerName, other.AssertedID, other.AssertedName = "Anon", "+448888", "Bob"
		if err := s.Insert(ctx, []Interaction{s.FromSummary(sum, "n"), s.FromSummary(other, "n")}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "pai1")
		if err != nil || got.CallerName != "Alice Smith" || got.AssertedID != "+449999" || got.AssertedName != "Alice S" {
			t.Fatalf("stored: %+v %v", got, err)
		}
		var b bytes.Buffer
		if err := WriteExport(&b, FormatCSV, []Interaction{got}); err != nil || !bytes.Contains(b.Bytes(), []byte("Alice Smith,'+449999,Alice S")) {
			t.Errorf("export: %v\n%s", err, b.String())
		}
		// By caller number: the asserted identity goes too.
		if ids, err := s.Anonymise(ctx, AnonymiseOptions{Number: "+441234", Actor: "t"}); err != nil || len(ids) != 1 {
			t.Fatalf("anonymise caller: %v %v", ids, err)
		}
		// By asserted number alone.
		if ids, err := s.Anonymise(ctx, AnonymiseOptions{Number: "+448888", Actor: "t"}); err != nil || len(ids) != 1 || ids[0] != "pai2" {
			t.Fatalf("anonymise asserted: %v %v", ids, err)
		}
		for _, id := range []string{"pai1", "pai2"} {
			got, _ := s.Get(ctx, id)
			if got.CallerName != "" || got.AssertedName != "" || got.AssertedID != Anonymised {
				t.Errorf("%s after anonymise: name %q asserted %q %q", id, got.CallerName, got.AssertedID, got.AssertedName)
			}
		}
	})
}
