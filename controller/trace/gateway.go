package trace

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
)

// MaxListed is how many entries of each kind Drift lists (it counts them all).
const MaxListed = 20

// Gateway is the trace of a flow through one gateway.
type Gateway struct {
	Gateway string `json:"gateway" yaml:"gateway"`
	// Error says why the gateway could not be traced (then nothing else is
	// set).
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
	// IntentVersion is the version of the intent compared with; EntriesRead
	// the number of entries read back.
	IntentVersion uint64 `json:"intent_version" yaml:"intent_version"`
	EntriesRead   int    `json:"entries_read" yaml:"entries_read"`
	// InSync: the gateway holds exactly the entries the intent wants. When
	// not, Drift says which entries differ.
	InSync bool   `json:"in_sync" yaml:"in_sync"`
	Drift  *Drift `json:"drift,omitempty" yaml:"drift,omitempty"`
	// VIPs is the flow's path to each VIP traced, over the entries read back.
	VIPs []VIPPath `json:"vips" yaml:"vips"`
}

// VIPPath is the path over the gateway's own tables, with the outcome the
// intent's tables give for comparison.
type VIPPath struct {
	Path `yaml:",inline"`
	// Intent is what the entries the intent wants decide; AgreesWithIntent
	// says the gateway decides the same.
	Intent           Outcome `json:"intent" yaml:"intent"`
	AgreesWithIntent bool    `json:"agrees_with_intent" yaml:"agrees_with_intent"`
}

// Drift lists the entries in which a gateway differs from the intent, at
// most MaxListed of each kind, each with its origin; the counts are complete.
type Drift struct {
	// Missing: wanted, not held.
	Missing      []string `json:"missing,omitempty" yaml:"missing,omitempty"`
	MissingCount int      `json:"missing_count" yaml:"missing_count"`
	// Differ: held with another action than wanted.
	Differ      []string `json:"differ,omitempty" yaml:"differ,omitempty"`
	DifferCount int      `json:"differ_count" yaml:"differ_count"`
	// Extra: held, not wanted (written behind the controller's back, or
	// left by an older intent not yet retired).
	Extra      []string `json:"extra,omitempty" yaml:"extra,omitempty"`
	ExtraCount int      `json:"extra_count" yaml:"extra_count"`
}

// FromReadBack traces q through the gateway whose tables rb holds.
func FromReadBack(rb *engine.ReadBack, q *Query) (Gateway, error) {
	g := Gateway{Gateway: rb.Gateway, IntentVersion: rb.Version, EntriesRead: len(rb.Have), InSync: rb.InSync(), VIPs: []VIPPath{}}
	have, err := Load(rb.Have)
	if err != nil {
		return g, fmt.Errorf("trace: the entries read back from %s: %w", rb.Gateway, err)
	}
	want := have // in sync: the same entries
	if !g.InSync {
		if want, err = Load(rb.Want); err != nil {
			return g, fmt.Errorf("trace: the entries the intent wants on %s: %w", rb.Gateway, err)
		}
		g.Drift = drift(rb)
	}
	var vips []netip.Addr
	if q.VIP != "" {
		a, ok := want.VIPAddress(q.VIP)
		if !ok {
			a, ok = have.VIPAddress(q.VIP)
		}
		if !ok {
			return g, fmt.Errorf("%w: no VIP named %q on gateway %s", ErrQuery, q.VIP, rb.Gateway)
		}
		if !q.Reaches(a) {
			return g, fmt.Errorf("%w: plain traffic from %s cannot reach VIP %s (%s): plain traffic's outer header is the flow's, of another family",
				ErrQuery, q.Src, q.VIP, a)
		}
		vips = []netip.Addr{a}
	} else {
		vips = append(have.VIPs(""), want.VIPs("")...)
		slices.SortFunc(vips, func(a, b netip.Addr) int { return a.Compare(b) })
		vips = slices.Compact(vips)
		vips = slices.DeleteFunc(vips, func(a netip.Addr) bool { return !q.Reaches(a) })
	}
	for _, v := range vips {
		p := have.Explain(q, v)
		if p.VIP == v.String() {
			if n := want.vips[v]; n != "" {
				p.VIP = n // named by the intent even when the gateway lacks it
			}
		}
		w := want.Decide(q, v)
		g.VIPs = append(g.VIPs, VIPPath{Path: p, Intent: w, AgreesWithIntent: p.Outcome() == w})
	}
	return g, nil
}

func drift(rb *engine.ReadBack) *Drift {
	wanted := map[string]*compile.Entry{}
	for i := range rb.Want {
		wanted[rb.Want[i].Key()] = &rb.Want[i]
	}
	list := func(es []compile.Entry, describe func(*compile.Entry) string) []string {
		es = slices.Clone(es)
		slices.SortFunc(es, func(a, b compile.Entry) int { return cmp.Compare(a.Origin+a.Key(), b.Origin+b.Key()) })
		var out []string
		for i := range es {
			if len(out) == MaxListed {
				break
			}
			out = append(out, describe(&es[i]))
		}
		return out
	}
	named := func(e *compile.Entry) string {
		if e.Origin == "" {
			return "(not in the intent) " + e.String()
		}
		return e.Origin + ": " + e.String()
	}
	return &Drift{
		Missing: list(rb.Missing, named), MissingCount: len(rb.Missing),
		Differ: list(rb.Differ, func(e *compile.Entry) string {
			s := named(e)
			if w := wanted[e.Key()]; w != nil {
				s += fmt.Sprintf("; the intent wants %s(%s)", w.Action, params(w))
			}
			return s
		}), DifferCount: len(rb.Differ),
		Extra: list(rb.Extra, named), ExtraCount: len(rb.Extra),
	}
}

func params(e *compile.Entry) string {
	s := ""
	for i, p := range e.Params {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s=%x", p.Name, p.Value)
	}
	return s
}
