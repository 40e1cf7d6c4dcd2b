package intent

import (
	"errors"
	"fmt"
	"strings"
)

// Classes of problems. Every *Problem wraps exactly one of them, so a caller can
// test a whole validation result with errors.Is (an *Errors unwraps to all of its
// problems).
var (
	// ErrSyntax: the document is not well-formed YAML, or a value has the wrong YAML
	// type (a string where a number belongs...).
	ErrSyntax = errors.New("bad YAML")
	// ErrUnknownField: a key the schema does not have (often a typo).
	ErrUnknownField = errors.New("unknown field")
	// ErrRequired: a required field is missing or empty.
	ErrRequired = errors.New("required")
	// ErrRange: a number is out of its range or an enumeration has an unknown value.
	ErrRange = errors.New("out of range")
	// ErrAddress: an IPv4 address, prefix, MAC or host:port that does not parse, or
	// a prefix with host bits set.
	ErrAddress = errors.New("bad address")
	// ErrUnknownRef: a reference to a pool, VIP, tenant or port that does not exist.
	ErrUnknownRef = errors.New("unknown reference")
	// ErrDuplicate: two objects share a name, id, address or VNI that must be unique,
	// including two derived ids that collide.
	ErrDuplicate = errors.New("duplicate")
	// ErrConflict: values that contradict each other: a backend declared twice with
	// different attributes, a rule whose selectors can never match together.
	ErrConflict = errors.New("conflict")
	// ErrNoWeight: a pool in which no backend has a positive weight.
	ErrNoWeight = errors.New("no backend with positive weight")
	// ErrOverlap: two gray rules of the same priority match a common packet.
	ErrOverlap = errors.New("overlapping rules of equal priority")
	// ErrCapacity: the intent needs more entries than a table has (docs/pipeline.md,
	// Sizes).
	ErrCapacity = errors.New("table capacity exceeded")
)

// Problem is one thing wrong with an intent: where (Path, in the document's own
// terms, e.g. "pools[1].backends[2].weight") and what.
type Problem struct {
	// Path names the field: YAML keys joined by dots, list positions in brackets,
	// map keys in brackets ("gateways[0].ports[3].mac"). Empty for the document as
	// a whole; "line N" when only the YAML line is known.
	Path string
	// Msg says what is wrong, with the offending value.
	Msg string
	// Err is the class of the problem (one of the Err* variables).
	Err error
}

// Error returns "path: message".
func (p *Problem) Error() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Unwrap returns the problem's class.
func (p *Problem) Unwrap() error { return p.Err }

// Errors is every problem found in an intent, in document order. Validation
// returns all of them at once and never a partial result.
type Errors struct {
	Problems []*Problem
}

// Error lists the problems, one a line.
func (e *Errors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "intent: %d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteByte('s')
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems, so errors.Is(err, ErrOverlap) and errors.As(err,
// &problem) look at each of them.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// problems collects Problems during validation.
type problems struct {
	list []*Problem
}

func (ps *problems) add(class error, path, format string, args ...any) {
	ps.list = append(ps.list, &Problem{Path: path, Msg: fmt.Sprintf(format, args...), Err: class})
}

// err returns nil or an *Errors holding every problem.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &Errors{Problems: ps.list}
}

// path helpers: field("pools", 1) = "pools[1]", dot("pools[1]", "name") = "pools[1].name".
func idx(p string, i int) string { return fmt.Sprintf("%s[%d]", p, i) }
func dot(p, field string) string {
	if p == "" {
		return field
	}
	return p + "." + field
}
