package intent

import (
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkIntegers reports every float written where the document wants an integer.
// yaml.v3 truncates a float into an integer field (vni: 5001.7 decodes as 5001,
// weight: 0.9 as 0), so Parse walks the node tree along the Spec's types first
// and refuses those, naming the path: a number is never silently rounded.
func checkIntegers(ps *problems, n *yaml.Node, t reflect.Type, path string) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			checkIntegers(ps, c, t, path)
		}
		return
	case yaml.AliasNode:
		checkIntegers(ps, n.Alias, t, path)
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if f, ok := fields[n.Content[i].Value]; ok {
				checkIntegers(ps, n.Content[i+1], f, dot(path, n.Content[i].Value))
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkIntegers(ps, c, t.Elem(), idx(path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkIntegers(ps, n.Content[i+1], t.Elem(), path+"["+n.Content[i].Value+"]")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" {
			ps.add(ErrRange, path, "%s is not an integer (a whole number is required; it is not rounded)", n.Value)
		}
	}
}

// yamlFields maps a struct's YAML keys to the fields' types, as yaml.v3 names
// them (the tag's name, else the lowercased field name).
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}
