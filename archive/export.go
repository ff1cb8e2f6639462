package archive

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// Export formats.
const (
	FormatCSV  = "csv"
	FormatXLSX = "xlsx"
)

// ErrFormat: an export format other than csv or xlsx.
var ErrFormat = errors.New("archive: export format must be csv or xlsx")

// MaxExport is the most interactions one export holds.
const MaxExport = 100000

// ExportRows returns the interactions q selects (at most MaxExport; 0
// Limit means MaxExport) with their participant data, every value masked:
// a masked value as stored, a kept value masked here under its key's
// policy, so an export file never holds a clear participant value.
func (s *Store) ExportRows(ctx context.Context, q Query) ([]Interaction, error) {
	if q.Limit <= 0 || q.Limit > MaxExport {
		q.Limit = MaxExport
	}
	ins, err := s.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	idx := make(map[string]int, len(ins))
	for i := range ins {
		idx[ins[i].ID] = i
	}
	const chunk = 500
	for lo := 0; lo < len(ins); lo += chunk {
		hi := min(lo+chunk, len(ins))
		ids := make([]string, 0, hi-lo)
		for _, in := range ins[lo:hi] {
			ids = append(ids, in.ID)
		}
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT interaction_id, key, value, policy FROM participant_data WHERE interaction_id IN (`+
			placeholders(len(ids))+`) ORDER BY interaction_id, key`), anys(ids)...)
		if err != nil {
			return nil, fmt.Errorf("archive: export: %w", err)
		}
		for rows.Next() {
			var id string
			var d DataItem
			if err := rows.Scan(&id, &d.Key, &d.Value, &d.Policy); err != nil {
				rows.Close()
				return nil, fmt.Errorf("archive: export: %w", err)
			}
			if d.Policy != MaskAfterCall && d.Value != Anonymised {
				d.Value = Mask(d.Value, s.policy.For(d.Key).Visible)
			}
			i := idx[id]
			ins[i].Data = append(ins[i].Data, d)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("archive: export: %w", err)
		}
	}
	// Whether each still has a recording, for the "recorded" column.
	for lo := 0; lo < len(ins); lo += chunk {
		hi := min(lo+chunk, len(ins))
		ids := make([]string, 0, hi-lo)
		for _, in := range ins[lo:hi] {
			ids = append(ids, in.ID)
		}
		files, err := s.recordingFiles(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("archive: export: %w", err)
		}
		for id := range files {
			ins[idx[id]].Recording = &Recording{}
		}
	}
	return ins, nil
}

// exportHeader is the fixed columns; one "data:KEY" column per
// participant-data key follows.
var exportHeader = []string{"id", "sip_call_id", "offered", "answered", "ended", "caller", "caller_name", "asserted_id", "asserted_name", "called", "route",
	"queue", "agent", "wait_s", "talk_s", "ended_by", "end_reason", "consent", "recorded", "node"}

func exportTable(ins []Interaction) (header []string, rows func(yield func([]string) bool)) {
	keySet := map[string]bool{}
	for _, in := range ins {
		for _, d := range in.Data {
			keySet[d.Key] = true
		}
	}
	keys := make([]string, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	header = append([]string(nil), exportHeader...)
	for _, k := range keys {
		header = append(header, "data:"+k)
	}
	tm := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }
	return header, func(yield func([]string) bool) {
		for _, in := range ins {
			rec := "no"
			if in.Recording != nil && in.Recording.DeletedAt.IsZero() {
				rec = "yes"
			}
			row := []string{in.ID, in.SIPCallID, tm(in.Offered), tm(in.Answered), tm(in.Ended), in.Caller, in.CallerName, in.AssertedID, in.AssertedName, in.Called,
				in.Route, in.Queue, in.Agent, secs(in.Wait), secs(in.Talk), in.EndedBy, in.EndReason, in.Consent, rec, in.Node}
			vals := make(map[string]string, len(in.Data))
			for _, d := range in.Data {
				vals[d.Key] = d.Value
			}
			for _, k := range keys {
				row = append(row, vals[k])
			}
			if !yield(row) {
				return
			}
		}
	}
}

// csvSafe keeps a spreadsheet opening the CSV from taking a cell as a
// formula (a caller name from the wire can start with "="): such a cell
// is prefixed with a quote, as OWASP's CSV-injection advice says.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// WriteExport writes ins (from ExportRows) to w as CSV or XLSX.
func WriteExport(w io.Writer, format string, ins []Interaction) error {
	header, rows := exportTable(ins)
	switch format {
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(header); err != nil {
			return fmt.Errorf("archive: export: %w", err)
		}
		for row := range rows {
			for i := range row {
				row[i] = csvSafe(row[i])
			}
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("archive: export: %w", err)
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("archive: export: %w", err)
		}
		return nil
	case FormatXLSX:
		return writeXLSX(w, header, rows)
	default:
		return fmt.Errorf("%w: %q", ErrFormat, format)
	}
}

// writeXLSX streams the table into one sheet. Every cell is written as a
// string, never a formula.
func writeXLSX(w io.Writer, header []string, rows func(yield func([]string) bool)) error {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "interactions"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return fmt.Errorf("archive: export: %w", err)
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return fmt.Errorf("archive: export: %w", err)
	}
	cells := func(row []string) []any {
		out := make([]any, len(row))
		for i, v := range row {
			out[i] = v
		}
		return out
	}
	n := 1
	put := func(row []string) error {
		cell, err := excelize.CoordinatesToCellName(1, n)
		if err != nil {
			return err
		}
		n++
		return sw.SetRow(cell, cells(row))
	}
	if err := put(header); err != nil {
		return fmt.Errorf("archive: export: %w", err)
	}
	for row := range rows {
		if err := put(row); err != nil {
			return fmt.Errorf("archive: export: %w", err)
		}
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("archive: export: %w", err)
	}
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("archive: export: %w", err)
	}
	return nil
}
