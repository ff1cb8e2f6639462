package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// This file turns what yaml.v3 says about a bad file ("line 3: field portz
// not found in type config.RTP", "cannot unmarshal !!str `many` into
// int") into errors that name the field path, as Validate's do: the file
// is parsed into a yaml.Node tree first, and the tree is walked against
// Config's reflect type before anything is decoded.

// SyntaxError is a file that is not YAML. Line and Column (1-based) are
// where the parser noticed; Column is 0 when it could not be placed.
type SyntaxError struct {
	Line, Column int
	// Msg is the YAML parser's reason.
	Msg string
}

func (e *SyntaxError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("YAML syntax error at line %d:%d: %s", e.Line, e.Column, e.Msg)
	}
	if e.Line > 0 {
		return fmt.Sprintf("YAML syntax error at line %d: %s", e.Line, e.Msg)
	}
	return "YAML syntax error: " + e.Msg
}

func (e *SyntaxError) Unwrap() error { return ErrInvalid }

// maxColumnSearch bounds the bytes syntaxError re-parses to place a
// syntax error's column (each try parses the file up to that byte).
const maxColumnSearch = 4096

// syntaxError places yaml.v3's syntax error err in data. yaml.v3 reports
// only a line; the column is found by parsing ever longer prefixes of the
// file from the start of that line: the first prefix that fails with the
// same message ends at the character the parser stopped at.
func syntaxError(data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &SyntaxError{Msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, aerr := strconv.Atoi(num); aerr == nil {
				e.Line, e.Msg = n, tail
			}
		}
	}
	if e.Line == 0 {
		return e
	}
	start := lineOffset(data, e.Line)
	if start < 0 {
		return e
	}
	end := min(len(data), start+maxColumnSearch)
	for p := start + 1; p <= end; p++ {
		var n yaml.Node
		perr := yaml.Unmarshal(data[:p], &n)
		if perr != nil && perr.Error() == err.Error() {
			e.Line, e.Column = position(data, p-1)
			break
		}
	}
	return e
}

// lineOffset returns the byte offset of 1-based line n, or -1.
func lineOffset(data []byte, n int) int {
	off := 0
	for i := 1; i < n; i++ {
		j := strings.IndexByte(string(data[off:]), '\n')
		if j < 0 {
			return -1
		}
		off += j + 1
	}
	return off
}

// position returns the 1-based line and column (in characters) of byte
// offset off.
func position(data []byte, off int) (line, col int) {
	line = 1 + strings.Count(string(data[:off]), "\n")
	ls := strings.LastIndexByte(string(data[:off]), '\n') + 1
	return line, utf8.RuneCount(data[ls:off]) + 1
}

var durationType = reflect.TypeOf(time.Duration(0))

// checkTree walks the document's node tree against Config's type and
// returns one FieldError per problem: unknown fields (with the nearest
// known name), fields given twice, values of the wrong kind (a string for
// a number, a list for a string, a duration without a unit).
func checkTree(doc *yaml.Node) []error {
	var errs []error
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		doc = doc.Content[0]
	}
	walkNode(doc, reflect.TypeOf(Config{}), "", &errs)
	return errs
}

func walkNode(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	bad := func(format string, a ...any) {
		p := path
		if p == "" {
			p = "(top level)"
		}
		*errs = append(*errs, &FieldError{Path: p, Reason: fmt.Sprintf(format, a...) + fmt.Sprintf(" (line %d:%d)", n.Line, n.Column)})
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // left empty: the default stays
	}
	if t == durationType {
		walkDuration(n, bad)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad("%s is not a mapping; this section takes %s", describe(n), strings.Join(yamlFields(t), ", "))
			return
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			if name := yamlName(t.Field(i)); name != "" {
				fields[name] = t.Field(i).Type
			}
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" { // "<<: *anchor": the anchor's fields, here
				walkNode(v, t, path, errs)
				continue
			}
			sub := join(path, k.Value)
			if line, dup := seen[k.Value]; dup {
				*errs = append(*errs, &FieldError{Path: sub, Reason: fmt.Sprintf("given twice (lines %d and %d)", line, k.Line)})
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, &FieldError{Path: sub, Reason: unknownField(k.Value, yamlFields(t)) + fmt.Sprintf(" (line %d:%d)", k.Line, k.Column)})
				continue
			}
			walkNode(v, ft, sub, errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			bad("%s is not a mapping of names to values", describe(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := join(path, k.Value)
			if line, dup := seen[k.Value]; dup {
				*errs = append(*errs, &FieldError{Path: sub, Reason: fmt.Sprintf("given twice (lines %d and %d)", line, k.Line)})
				continue
			}
			seen[k.Value] = k.Line
			walkNode(v, t.Elem(), sub, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad("%s is not a list; write [a, b]", describe(n))
			return
		}
		for i, item := range n.Content {
			walkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			bad("%s is not a single value", describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Decode(new(bool)) != nil {
			bad("%s is not true or false", describe(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			bad("%s is not a number", describe(n))
			return
		}
		if n.Tag == "!!float" { // yaml.v3 would truncate 2.5 to 2
			bad("%s is not a whole number", describe(n))
			return
		}
		if n.Decode(reflect.New(t).Interface()) != nil {
			bad("%s is not a whole number from %s", describe(n), rangeOf(t))
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			bad("%s is not a number", describe(n))
		}
	}
}

// walkDuration checks a time.Duration field: a string Go's
// time.ParseDuration reads ("10s", "1m30s", "0s"). A bare number, even
// 0, is refused, as yaml.v3 would refuse it: it has no unit.
func walkDuration(n *yaml.Node, bad func(string, ...any)) {
	if n.Kind != yaml.ScalarNode {
		bad("%s is not a duration like 10s", describe(n))
		return
	}
	switch n.Tag {
	case "!!str":
		if _, err := time.ParseDuration(n.Value); err != nil {
			bad("%s is not a duration like 10s", describe(n))
		}
	case "!!int", "!!float":
		bad("%s has no unit: write a duration like %ss", n.Value, n.Value)
	default:
		bad("%s is not a duration like 10s", describe(n))
	}
}

// describe shows a node in an error: a scalar quoted as the file has it
// (a string) or bare (a number, a boolean), else its kind.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "this value"
}

func rangeOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint64:
		return "0"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return fmt.Sprintf("0 to %d", uint64(1)<<(8*t.Size())-1)
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return fmt.Sprintf("%d to %d", -(int64(1) << (8*t.Size() - 1)), int64(1)<<(8*t.Size()-1)-1)
	}
	return "the int64 range"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlName is the key of a struct field in the file ("" when it has none).
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// yamlFields lists a struct's keys, sorted.
func yamlFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// unknownField explains an unknown key: the nearest known name when one is
// close (a typo), else every name the mapping takes.
func unknownField(key string, known []string) string {
	best, bestD := "", -1
	for _, k := range known {
		d := editDistance(strings.ToLower(key), k)
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD >= 0 && bestD <= max(2, len(key)/3) {
		return "unknown field; did you mean " + best + "?"
	}
	return "unknown field; this section takes " + strings.Join(known, ", ")
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeErr is the error of a file that failed to decode: its problems,
// one a line, each naming its field path.
func decodeErr(errs []error) error {
	return errors.Join(errs...)
}
