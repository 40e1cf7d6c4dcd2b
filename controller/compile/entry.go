package compile

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/graygw/graygw/pipeline"
)

// MatchKind is the match type of a match field.
type MatchKind uint8

// Match kinds used by the graygw pipeline.
const (
	Exact MatchKind = iota + 1
	Ternary
)

// String returns "exact" or "ternary".
func (k MatchKind) String() string {
	switch k {
	case Exact:
		return "exact"
	case Ternary:
		return "ternary"
	}
	return fmt.Sprintf("kind%d", uint8(k))
}

// Match is one match field of an entry, named as in the P4Info. Value (and Mask,
// for ternary fields) are big-endian, ceil(Bits/8) bytes long. A ternary field
// that matches anything is left out of the entry, as P4Runtime requires.
type Match struct {
	Field string
	Kind  MatchKind
	Bits  int
	Value []byte
	Mask  []byte // Ternary only
}

// Param is one action parameter, named as in the P4Info; Value is big-endian,
// ceil(Bits/8) bytes long.
type Param struct {
	Name  string
	Bits  int
	Value []byte
}

// Entry is one desired table entry in target-neutral form, keyed like a P4Runtime
// TableEntry: table, match fields (in key order), priority (ternary tables only,
// larger wins) and action with parameters (in declaration order). Names are the
// P4Info names (pipeline.Table*, pipeline.Action*).
type Entry struct {
	Table    string
	Match    []Match
	Priority int32
	Action   string
	Params   []Param
	// Origin names the intent object the entry comes from ("rule vm-10.0.0.5",
	// "pool base-router v1"), for dry runs, logs and counter labels. It is not
	// part of the entry's identity.
	Origin string
}

// Key returns the entry's identity (table, match and priority), the same for the
// entry that replaces it with another action.
func (e *Entry) Key() string {
	var b strings.Builder
	b.WriteString(e.Table)
	for _, m := range e.Match {
		fmt.Fprintf(&b, " %s=%x", m.Field, m.Value)
		if m.Kind == Ternary {
			fmt.Fprintf(&b, "&%x", m.Mask)
		}
	}
	if e.Priority != 0 {
		fmt.Fprintf(&b, " prio=%d", e.Priority)
	}
	return b.String()
}

// String returns the entry on one line: key, action and parameters.
func (e *Entry) String() string {
	var b strings.Builder
	b.WriteString(e.Key())
	b.WriteString(" -> ")
	b.WriteString(e.Action)
	b.WriteByte('(')
	for i, p := range e.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%s", p.Name, hex.EncodeToString(p.Value))
	}
	b.WriteByte(')')
	return b.String()
}

// Equal reports whether e and o are the same entry with the same action (Origin
// aside).
func (e *Entry) Equal(o *Entry) bool {
	if e.Key() != o.Key() || e.Action != o.Action || len(e.Params) != len(o.Params) {
		return false
	}
	for i := range e.Params {
		if e.Params[i].Name != o.Params[i].Name || !bytes.Equal(e.Params[i].Value, o.Params[i].Value) {
			return false
		}
	}
	return true
}

// Field returns the match field with the given name.
func (e *Entry) Field(name string) (Match, bool) {
	for _, m := range e.Match {
		if m.Field == name {
			return m, true
		}
	}
	return Match{}, false
}

// Param returns the action parameter with the given name.
func (e *Entry) Param(name string) (Param, bool) {
	for _, p := range e.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Uint returns a big-endian value as an integer (values of at most 64 bits).
func Uint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// be encodes v big-endian in ceil(bits/8) bytes.
func be(v uint64, bits int) []byte {
	n := (bits + 7) / 8
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

func exact(f pipeline.Field, v uint64) Match {
	return Match{Field: f.Name, Kind: Exact, Bits: f.Bits, Value: be(v, f.Bits)}
}

func ternary(f pipeline.Field, v, mask uint64) Match {
	return Match{Field: f.Name, Kind: Ternary, Bits: f.Bits, Value: be(v&mask, f.Bits), Mask: be(mask, f.Bits)}
}

func param(f pipeline.Field, v uint64) Param {
	return Param{Name: f.Name, Bits: f.Bits, Value: be(v, f.Bits)}
}

// exact128, ternary128 and param128 are exact, ternary and param for a
// 128-bit value (an IPv6 address).
func exact128(f pipeline.Field, v [16]byte) Match {
	return Match{Field: f.Name, Kind: Exact, Bits: f.Bits, Value: bytes.Clone(v[:])}
}

func ternary128(f pipeline.Field, v, mask [16]byte) Match {
	for i := range v {
		v[i] &= mask[i]
	}
	return Match{Field: f.Name, Kind: Ternary, Bits: f.Bits, Value: bytes.Clone(v[:]), Mask: bytes.Clone(mask[:])}
}

func param128(f pipeline.Field, v [16]byte) Param {
	return Param{Name: f.Name, Bits: f.Bits, Value: bytes.Clone(v[:])}
}
