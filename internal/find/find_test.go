package find

import "testing"

func TestFirst(t *testing.T) {
	type item struct {
		name string
		n    int
	}
	s := []item{{"a", 1}, {"b", 2}, {"b", 3}}
	p, ok := First(s, func(x *item) bool { return x.name == "b" })
	if !ok || p.n != 2 {
		t.Fatalf("First(b) = %+v, %v; want the first b (n=2)", p, ok)
	}
	p.n = 20
	if s[1].n != 20 {
		t.Errorf("the pointer does not alias the slice: s[1].n = %d after writing 20", s[1].n)
	}
	if p, ok := First(s, func(x *item) bool { return x.name == "c" }); ok || p != nil {
		t.Errorf("First(c) = %+v, %v; want nil, false", p, ok)
	}
	if p, ok := First[item](nil, func(*item) bool { return true }); ok || p != nil {
		t.Errorf("First on nil = %+v, %v; want nil, false", p, ok)
	}
}
