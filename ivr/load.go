package ivr

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Sentinel errors of the package. Returned errors wrap them with context;
// test with errors.Is.
var (
	// ErrInvalidFlow: a flow file does not parse or does not validate. The
	// error is a *ValidationError listing every problem.
	ErrInvalidFlow = errors.New("invalid flow")
	// ErrNoFlows: the directory holds no *.yaml or *.yml file.
	ErrNoFlows = errors.New("no flows")
	// ErrUnknownFlow: Run was asked for a flow that is not in the set.
	ErrUnknownFlow = errors.New("unknown flow")
)

// Problem is one thing wrong with a flow, located by file and step.
type Problem struct {
	File string // file name relative to the loaded directory
	Flow string // flow name, when known
	Step string // step name, when the problem belongs to one step
	Msg  string
}

// String formats the problem as `pay.yaml: step "get_card": next "confirm"
// does not exist`.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
	} else {
		fmt.Fprintf(&b, "flow %q", p.Flow)
	}
	b.WriteString(": ")
	if p.Step != "" {
		fmt.Fprintf(&b, "step %q: ", p.Step)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ValidationError lists every problem found in a load or validation pass.
// It matches ErrInvalidFlow with errors.Is.
type ValidationError struct {
	Problems []Problem
}

// Error joins the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalidFlow) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidFlow }

// FlowSet is a validated set of flows, keyed by name. It is read-only after
// LoadDir/NewFlowSet and safe for concurrent use by many calls.
type FlowSet struct {
	flows map[string]*Flow
	names []string
}

// NewFlowSet validates flows as one set (names unique, secure steps naming
// secure flows, every per-flow rule) and returns it, or a *ValidationError.
func NewFlowSet(flows ...*Flow) (*FlowSet, error) {
	if len(flows) == 0 {
		return nil, fmt.Errorf("flow set: %w", ErrNoFlows)
	}
	if probs := Validate(flows...); len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	fs := &FlowSet{flows: make(map[string]*Flow, len(flows))}
	for _, f := range flows {
		f.reindex()
		fs.flows[f.Name] = f
		fs.names = append(fs.names, f.Name)
	}
	sort.Strings(fs.names)
	return fs, nil
}

// Flow returns the named flow and whether it exists.
func (fs *FlowSet) Flow(name string) (*Flow, bool) {
	f, ok := fs.flows[name]
	return f, ok
}

// Names lists the flow names, sorted.
func (fs *FlowSet) Names() []string { return append([]string(nil), fs.names...) }

// Prompts lists every prompt name the flows may play, sorted and without
// duplicates, including digits/0 ... digits/9 (and star, hash) when a flow
// has a say_digits step. A deployment checks them against its prompt store.
func (fs *FlowSet) Prompts() []string {
	seen := map[string]bool{}
	add := func(ps []string) {
		for _, p := range ps {
			seen[p] = true
		}
	}
	for _, f := range fs.flows {
		for i := range f.Steps {
			if a := f.Steps[i].Action; a != nil {
				add(a.prompts())
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// LoadDir parses every *.yaml and *.yml file directly in dir of fsys (one
// flow per file) and validates them as one set. On any problem it returns a
// *ValidationError (matching ErrInvalidFlow) listing all of them, each naming
// its file and step.
func LoadDir(fsys fs.FS, dir string) (*FlowSet, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("load flows from %s: %w", dir, err)
	}
	var (
		flows []*Flow
		probs []Problem
	)
	for _, e := range entries {
		name := e.Name()
		ext := path.Ext(name)
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			probs = append(probs, Problem{File: name, Msg: "cannot read: " + err.Error()})
			continue
		}
		f, err := Parse(name, data)
		if err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				probs = append(probs, ve.Problems...)
				continue
			}
			probs = append(probs, Problem{File: name, Msg: err.Error()})
			continue
		}
		flows = append(flows, f)
	}
	if len(flows) == 0 && len(probs) == 0 {
		return nil, fmt.Errorf("load flows from %s: %w (no *.yaml or *.yml files)", dir, ErrNoFlows)
	}
	probs = append(probs, Validate(flows...)...)
	if len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	return NewFlowSet(flows...)
}

// typeNameRE strips Go type names from yaml.v3 messages ("field x not found
// in type ivr.Step") so they read as flow-language errors.
var typeNameRE = regexp.MustCompile(` in type [\w.*\[\]]+`)

// flowFile is the YAML shape of a flow file: the steps stay nodes so each
// can be decoded by its action key into that action's type.
type flowFile struct {
	Name        string      `yaml:"name"`
	Kind        Kind        `yaml:"kind"`
	Description string      `yaml:"description"`
	Outputs     []string    `yaml:"outputs"`
	Steps       []yaml.Node `yaml:"steps"`
}

// Parse decodes one flow file. Unknown fields, a second YAML document and an
// empty file are errors. Each step is a mapping of name, next and exactly
// one action key, decoded into that action's type. It does not validate;
// see Validate and LoadDir. Errors are *ValidationError values naming file
// (and step, for a problem inside one).
func Parse(file string, data []byte) (*Flow, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var ff flowFile
	if err := dec.Decode(&ff); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ValidationError{Problems: []Problem{{File: file, Msg: "empty file"}}}
		}
		return nil, yamlProblems(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ValidationError{Problems: []Problem{{File: file, Flow: ff.Name, Msg: "more than one YAML document (one flow per file)"}}}
	}
	f := &Flow{Name: ff.Name, Kind: ff.Kind, Description: ff.Description, Outputs: ff.Outputs, File: file}
	if f.Kind == "" {
		f.Kind = KindNormal
	}
	var probs []Problem
	for i := range ff.Steps {
		s, msgs := decodeStep(&ff.Steps[i])
		for _, m := range msgs {
			p := Problem{File: file, Flow: f.Name, Step: s.Name, Msg: m}
			if s.Name == "" {
				p.Msg = fmt.Sprintf("step %d: %s", i+1, m)
			}
			probs = append(probs, p)
		}
		f.Steps = append(f.Steps, s)
	}
	if len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	f.reindex()
	return f, nil
}

// decodeStep decodes one step node: name, next and one action key whose
// value is decoded strictly (unknown fields refused) into the action's
// type. It returns the step as far as it decoded and every problem found.
func decodeStep(n *yaml.Node) (Step, []string) {
	var s Step
	if n.Kind != yaml.MappingNode {
		return s, []string{fmt.Sprintf("line %d: a step must be a mapping (name, next and one action)", n.Line)}
	}
	var (
		msgs    []string
		actions []string
		body    *yaml.Node
	)
	scalar := func(k, v *yaml.Node, dst *string) {
		if v.Kind != yaml.ScalarNode {
			msgs = append(msgs, fmt.Sprintf("line %d: %s must be a string", v.Line, k.Value))
			return
		}
		if v.Tag != "!!null" {
			*dst = v.Value
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			scalar(k, v, &s.Name)
		case "next":
			scalar(k, v, &s.Next)
		default:
			if _, ok := actionTypes[k.Value]; !ok {
				msgs = append(msgs, fmt.Sprintf("line %d: unknown field or action %q (actions: %s)", k.Line, k.Value, strings.Join(actionKeys(), ", ")))
				continue
			}
			actions = append(actions, k.Value)
			body = v
		}
	}
	switch {
	case len(actions) > 1:
		msgs = append(msgs, fmt.Sprintf("step has more than one action (%s); use one step per action", strings.Join(actions, ", ")))
	case len(actions) == 1:
		a := actionTypes[actions[0]]()
		if err := decodeStrict(body, a); err != nil {
			msgs = append(msgs, yamlMessages(err)...)
		} else {
			s.Action = a
		}
	}
	return s, msgs
}

// UnmarshalYAML decodes a step by its action key, as Parse does, so a Flow
// decoded with yaml.v3 directly gets typed actions too (Parse also names
// the step in each problem).
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	st, msgs := decodeStep(n)
	*s = st
	if len(msgs) > 0 {
		return &yaml.TypeError{Errors: msgs}
	}
	return nil
}

// decodeStrict decodes n into v like a yaml.Decoder with KnownFields:
// yaml.v3's Node.Decode does not refuse unknown fields, so they are looked
// for first, against v's yaml tags.
func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "answer:" with no body
	}
	if msgs := unknownFields(n, reflect.TypeOf(v)); len(msgs) > 0 {
		return &yaml.TypeError{Errors: msgs}
	}
	return n.Decode(v)
}

// unknownFields lists "line N: field X not found" for every mapping key in
// n that the type t has no yaml field for, recursing into structs, slices,
// maps and pointers.
func unknownFields(n *yaml.Node, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	var msgs []string
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
			return nil
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				msgs = append(msgs, fmt.Sprintf("line %d: field %s not found", k.Line, k.Value))
				continue
			}
			msgs = append(msgs, unknownFields(n.Content[i+1], ft)...)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				msgs = append(msgs, unknownFields(c, t.Elem())...)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				msgs = append(msgs, unknownFields(n.Content[i], t.Elem())...)
			}
		}
	}
	return msgs
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// yamlFields maps the yaml keys of struct t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out[name] = sf.Type
	}
	return out
}

func yamlProblems(file string, err error) error {
	ve := &ValidationError{}
	for _, m := range yamlMessages(err) {
		ve.Problems = append(ve.Problems, Problem{File: file, Msg: m})
	}
	return ve
}

// yamlMessages turns a yaml.v3 error into flow-language messages, without
// Go type names.
func yamlMessages(err error) []string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			out[i] = typeNameRE.ReplaceAllString(m, "")
		}
		return out
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return []string{typeNameRE.ReplaceAllString(msg, "")}
}
