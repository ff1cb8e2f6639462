package ivr

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
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
			s := &f.Steps[i]
			switch {
			case s.Play != nil:
				add(s.Play.Prompts)
			case s.Menu != nil:
				add(s.Menu.Prompt)
				add(s.Menu.InvalidPrompt)
				add(s.Menu.TimeoutPrompt)
			case s.Collect != nil:
				add(s.Collect.Prompt)
				add(s.Collect.RetryPrompt)
			case s.SayDigits != nil:
				for _, d := range "0123456789*#" {
					seen[digitPrompt(byte(d))] = true
				}
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

// Parse decodes one flow file. Unknown fields, a second YAML document and an
// empty file are errors. It does not validate; see Validate and LoadDir.
// Errors are *ValidationError values naming file.
func Parse(file string, data []byte) (*Flow, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f Flow
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ValidationError{Problems: []Problem{{File: file, Msg: "empty file"}}}
		}
		return nil, yamlProblems(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ValidationError{Problems: []Problem{{File: file, Flow: f.Name, Msg: "more than one YAML document (one flow per file)"}}}
	}
	if f.Kind == "" {
		f.Kind = KindNormal
	}
	f.File = file
	f.reindex()
	return &f, nil
}

func yamlProblems(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		ve := &ValidationError{}
		for _, m := range te.Errors {
			ve.Problems = append(ve.Problems, Problem{File: file, Msg: typeNameRE.ReplaceAllString(m, "")})
		}
		return ve
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return &ValidationError{Problems: []Problem{{File: file, Msg: typeNameRE.ReplaceAllString(msg, "")}}}
}
