package intent

// Editing the gray rules of an intent document as written: the rest of the
// document (its comments, order and layout) is kept.
//
// A full-size intent (10k rules) is about 1.3 MB of YAML: parsing it takes
// ~90 ms and re-encoding an edited node tree ~200 ms, far more than the rest of
// a cutover. So an edit that adds one rule, or removes one, splices the rule's
// lines into the text and edits the parsed spec alongside, when the text's
// layout makes that exact: gray_rules is the document's last top-level key, a
// block sequence whose item count matches the spec. Any other layout, and every
// other edit, goes through the YAML node tree (comments kept). Both paths are
// behind the same three calls: AddRule, ReplaceRule, RemoveRules.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Document is an intent document as written, parsed on first use. It is not
// modified by its methods: an edit returns a new Document.
type Document struct {
	text []byte
	once sync.Once
	spec *Spec
	err  error
}

// NewDocument returns the document text (not copied: it must not change).
func NewDocument(text []byte) *Document { return &Document{text: text} }

// newParsed returns a document whose parsed spec is already known.
func newParsed(text []byte, spec *Spec) *Document {
	d := &Document{text: text, spec: spec}
	d.once.Do(func() {})
	return d
}

// Text returns the document as written. It must not be modified.
func (d *Document) Text() []byte { return d.text }

// Spec returns the document parsed (Parse), once. It must not be modified.
func (d *Document) Spec() (*Spec, error) {
	d.once.Do(func() { d.spec, d.err = Parse(d.text) })
	return d.spec, d.err
}

// Rule returns the gray rule named name as written, and its index in
// gray_rules; -1 when there is none.
func (d *Document) Rule(name string) (RuleSpec, int, error) {
	if sp, err := d.Spec(); err == nil {
		i := slices.IndexFunc(sp.GrayRules, func(r RuleSpec) bool { return r.Name == name })
		if i < 0 {
			return RuleSpec{}, -1, nil
		}
		return sp.GrayRules[i], i, nil
	}
	// A document that does not parse as a Spec may still be edited as YAML
	// (validation says what is wrong with the result).
	doc, err := parseNode(d.text)
	if err != nil {
		return RuleSpec{}, -1, err
	}
	rules := mappingValue(doc, "gray_rules", yaml.SequenceNode)
	found, idx := RuleSpec{}, -1
	for i, n := range rules.Content {
		if !hasName(n, name) {
			continue // decoding 10k rules to find one name is most of a cutover's parse
		}
		var r RuleSpec
		if n.Decode(&r) == nil && r.Name == name {
			found, idx = r, i
		}
	}
	return found, idx, nil
}

// AddRule returns the document with r appended to gray_rules, and r's index.
func (d *Document) AddRule(r RuleSpec) (*Document, int, error) {
	if sp, err := d.Spec(); err == nil {
		if text, ok := appendRule(d.text, r, len(sp.GrayRules)); ok {
			ns := *sp
			ns.GrayRules = append(slices.Clip(sp.GrayRules), r)
			return newParsed(text, &ns), len(sp.GrayRules), nil
		}
	}
	doc, err := parseNode(d.text)
	if err != nil {
		return nil, 0, err
	}
	rules := mappingValue(doc, "gray_rules", yaml.SequenceNode)
	n, err := ruleNode(r)
	if err != nil {
		return nil, 0, fmt.Errorf("intent: encode rule: %w", err)
	}
	rules.Content = append(rules.Content, n)
	text, err := encodeNode(doc)
	if err != nil {
		return nil, 0, err
	}
	return NewDocument(text), len(rules.Content) - 1, nil
}

// ReplaceRule returns the document with the gray rule named r.Name replaced by
// r (the comment above it kept), and its index; -1 and d itself when there is
// no such rule.
func (d *Document) ReplaceRule(r RuleSpec) (*Document, int, error) {
	doc, err := parseNode(d.text)
	if err != nil {
		return nil, -1, err
	}
	rules := mappingValue(doc, "gray_rules", yaml.SequenceNode)
	idx := -1
	for i, n := range rules.Content {
		var old RuleSpec
		if hasName(n, r.Name) && n.Decode(&old) == nil && old.Name == r.Name {
			idx = i
		}
	}
	if idx < 0 {
		return d, -1, nil
	}
	n, err := ruleNode(r)
	if err != nil {
		return nil, -1, fmt.Errorf("intent: encode rule: %w", err)
	}
	n.HeadComment = rules.Content[idx].HeadComment
	rules.Content[idx] = n
	text, err := encodeNode(doc)
	if err != nil {
		return nil, -1, err
	}
	return NewDocument(text), idx, nil
}

// RemoveRules returns the document without the gray rule named name, or
// without every gray rule when name is "" (the gray_rules key goes too), and
// the rules removed, in document order. Nothing removed: d itself.
func (d *Document) RemoveRules(name string) (*Document, []RuleSpec, error) {
	if sp, err := d.Spec(); err == nil && name != "" {
		match := func(r RuleSpec) bool { return r.Name == name }
		k := slices.IndexFunc(sp.GrayRules, match)
		if k >= 0 && !slices.ContainsFunc(sp.GrayRules[k+1:], match) {
			if text, ok := removeRule(d.text, k, len(sp.GrayRules)); ok {
				ns := *sp
				ns.GrayRules = slices.Delete(slices.Clone(sp.GrayRules), k, k+1)
				return newParsed(text, &ns), []RuleSpec{sp.GrayRules[k]}, nil
			}
		}
	}
	doc, err := parseNode(d.text)
	if err != nil {
		return nil, nil, err
	}
	var removed []RuleSpec
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "gray_rules" {
			continue
		}
		seq := root.Content[i+1]
		kept := seq.Content[:0:0]
		for _, n := range seq.Content {
			var r RuleSpec
			if (name == "" || hasName(n, name)) && n.Decode(&r) == nil && (name == "" || r.Name == name) {
				removed = append(removed, r)
				continue
			}
			kept = append(kept, n)
		}
		seq.Content = kept
		if len(kept) == 0 {
			root.Content = append(root.Content[:i], root.Content[i+2:]...)
		}
		break
	}
	if len(removed) == 0 {
		return d, nil, nil
	}
	text, err := encodeNode(doc)
	if err != nil {
		return nil, nil, err
	}
	return NewDocument(text), removed, nil
}

// parseNode decodes an intent document into a YAML node tree, comments kept.
func parseNode(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("intent: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("intent: the document is not a YAML mapping")
	}
	return &doc, nil
}

// mappingValue returns the value of key in the document's top mapping, adding
// an empty node of kind when absent.
func mappingValue(doc *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			v := root.Content[i+1]
			if v.Kind != kind { // "gray_rules:" with nothing after it is a null scalar
				*v = yaml.Node{Kind: kind, Tag: tagOf(kind)}
			}
			return v
		}
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	v := &yaml.Node{Kind: kind, Tag: tagOf(kind)}
	root.Content = append(root.Content, k, v)
	return v
}

func tagOf(kind yaml.Kind) string {
	switch kind {
	case yaml.SequenceNode:
		return "!!seq"
	case yaml.MappingNode:
		return "!!map"
	}
	return ""
}

// hasName reports whether a rule node may be the rule named name: false only
// when it is a mapping whose name key is a plain scalar of another value.
func hasName(n *yaml.Node, name string) bool {
	if n.Kind != yaml.MappingNode {
		return true
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
			return v.Value == name
		}
	}
	return true
}

// ruleNode encodes a rule, its match on one line as the examples write it.
func ruleNode(r RuleSpec) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(r); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if v := n.Content[i].Value; v == "match" || v == "mirror" {
			n.Content[i+1].Style = yaml.FlowStyle
		}
	}
	return &n, nil
}

func encodeNode(doc *yaml.Node) ([]byte, error) { return encodeYAML(doc, "encode") }

// ruleItems locates the items of the top-level gray_rules block sequence when it
// is the last top-level key of text: the byte offset of each item's first line
// and the items' indentation. ok is false for any other layout (flow sequence,
// another key after it, CRLF, document markers).
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
func appendRule(text []byte, r RuleSpec, nItems int) ([]byte, bool) {
	starts, indent, ok := ruleItems(text)
	if !ok || len(starts) != nItems {
		return nil, false
	}
	n, err := ruleNode(r)
	if err != nil {
		return nil, false
	}
	item, err := encodeNode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{
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
