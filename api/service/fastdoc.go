package service

import (
	"bytes"
	"context"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
)

// A full-size intent (10k rules) is about 1.3 MB of YAML: parsing it takes
// ~90 ms and re-encoding the edited node tree ~200 ms, far more than the rest
// of a cutover. So the service keeps the current version parsed (docCache), and
// Cutover (a new rule) and Rollback RULE edit the parsed spec and splice the
// rule's lines into the stored text, when the text's layout makes that exact:
// gray_rules is the document's last top-level key, a block sequence whose item
// count matches the spec. Anything else takes the YAML node path (comments and
// layout kept as before).

// docCache is the stored intent of one version, parsed.
type docCache struct {
	ver  *store.Version // Intent is the text
	spec *intent.Spec
}

// specOf returns the parsed spec of cur, from the cache when it holds that
// version. Callers hold s.mu. The spec must not be modified.
func (s *Service) specOf(cur *store.Version) (*intent.Spec, error) {
	if c := s.doc; c != nil && c.ver.Number == cur.Number && bytes.Equal(c.ver.Intent, cur.Intent) {
		return c.spec, nil
	}
	sp, err := intent.Parse(cur.Intent)
	if err != nil {
		return nil, err
	}
	s.doc = &docCache{ver: cur, spec: sp}
	return sp, nil
}

// currentLocked returns the current version: the cached one when the store's
// newest event says it is still current (an event is a few hundred bytes of
// JSON; the version is the whole document, ~8 ms to decode at 10k rules), else
// the store's. Callers hold s.mu.
func (s *Service) currentLocked(ctx context.Context) (*store.Version, error) {
	if c := s.doc; c != nil {
		if evs, err := s.cfg.Store.History(ctx, store.Query{Limit: 1}); err == nil && len(evs) == 1 && evs[0].After == c.ver.Number {
			v := *c.ver
			return &v, nil
		}
	}
	return s.cfg.Store.Current(ctx)
}

// ruleItems locates the items of the top-level gray_rules block sequence when it
// is the last top-level key of text: the byte offset of each item's first line
// and the end of the sequence, and the items' indentation. ok is false for any
// other layout (flow sequence, another key after it, CRLF, document markers).
func ruleItems(text []byte) (starts []int, indent int, ok bool) {
	if bytes.IndexByte(text, '\r') >= 0 {
		return nil, 0, false
	}
	found := false
	indent = -1
	for off := 0; off < len(text); {
		end := bytes.IndexByte(text[off:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += off
		}
		line := text[off:end]
		next := end + 1
		trimmed := bytes.TrimLeft(line, " ")
		n := len(line) - len(trimmed)
		switch {
		case !found:
			if bytes.HasPrefix(line, []byte("gray_rules:")) {
				rest := bytes.TrimSpace(line[len("gray_rules:"):])
				if len(rest) != 0 && rest[0] != '#' {
					return nil, 0, false // flow style or a scalar
				}
				found = true
			}
		case len(trimmed) == 0 || trimmed[0] == '#':
			// blank or comment
		case indent < 0 || n == indent:
			if !(bytes.HasPrefix(trimmed, []byte("- ")) || len(trimmed) == 1 && trimmed[0] == '-') {
				return nil, 0, false // another key, "---", "..."
			}
			if indent < 0 {
				indent = n
			}
			starts = append(starts, off)
		case n < indent:
			return nil, 0, false
		}
		off = next
	}
	return starts, indent, found && len(starts) > 0
}

// appendRule returns text with r appended as the last item of gray_rules, and
// whether the layout allowed it; nItems must be the number of rules text holds.
func appendRule(text []byte, r intent.RuleSpec, nItems int) ([]byte, bool) {
	starts, indent, ok := ruleItems(text)
	if !ok || len(starts) != nItems {
		return nil, false
	}
	n, err := ruleNode(r)
	if err != nil {
		return nil, false
	}
	item, err := encodeDoc(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{
		{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{n}}}})
	if err != nil {
		return nil, false
	}
	pad := bytes.Repeat([]byte(" "), indent)
	out := make([]byte, 0, len(text)+len(item)+32)
	out = append(out, text...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	for _, l := range bytes.SplitAfter(bytes.TrimSuffix(item, []byte("\n")), []byte("\n")) {
		out = append(append(out, pad...), l...)
	}
	return append(out, '\n'), true
}

// removeRule returns text without item k of gray_rules (nItems in all), and
// whether the layout allowed it: not the last item (the key would go too), no
// comment right above the item (it would be left behind). Comment and blank
// lines at the end of the item's span stay (they head the next item).
func removeRule(text []byte, k, nItems int) ([]byte, bool) {
	starts, _, ok := ruleItems(text)
	if !ok || len(starts) != nItems || nItems < 2 || k < 0 || k >= nItems || text[len(text)-1] != '\n' {
		return nil, false
	}
	if prev := lineBefore(text, starts[k]); prev != nil && bytes.HasPrefix(bytes.TrimLeft(prev, " "), []byte("#")) {
		return nil, false
	}
	end := len(text)
	if k+1 < nItems {
		end = starts[k+1]
	}
	// Keep trailing blank and comment lines.
	for end > starts[k] {
		l := lineBefore(text, end)
		if t := bytes.TrimSpace(l); len(t) != 0 && t[0] != '#' {
			break
		}
		end -= len(l) + 1
	}
	if end <= starts[k] {
		return nil, false
	}
	if bytes.IndexByte(text[starts[k]:end], '&') >= 0 {
		return nil, false // it may define an anchor used elsewhere
	}
	return slices.Concat(text[:starts[k]], text[end:]), true
}

// lineBefore returns the line that ends just before offset off (which starts a
// line), without its newline; nil at the start of text.
func lineBefore(text []byte, off int) []byte {
	if off <= 0 {
		return nil
	}
	end := off - 1 // the '\n'
	start := bytes.LastIndexByte(text[:end], '\n') + 1
	return text[start:end]
}
