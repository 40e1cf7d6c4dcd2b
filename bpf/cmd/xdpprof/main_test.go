package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFunctions checks that a source line is charged to the function whose
// body holds it, declarations and lines between functions to none.
func TestFunctions(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "include"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := "static __always_inline int helper(int x);\n" + // 1: a declaration
		"static __always_inline int helper(int x)\n" + // 2
		"{\n" + // 3
		"\treturn x + 1;\n" + // 4
		"}\n" + // 5
		"\n" + // 6
		"SEC(\"xdp\")\n" + // 7
		"int prog(struct xdp_md *ctx)\n" + // 8
		"{\n" + // 9
		"\treturn helper(2);\n" + // 10
		"}\n" // 11
	h := "static __always_inline __u32 tss_bit(__u64 a)\n{\n\treturn a;\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "p.c"), []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "include", "hash.h"), []byte(h), 0o644); err != nil {
		t.Fatal(err)
	}
	fr, err := functions(dir)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"p.c:1  static __always_inline int helper(int x);": "p.c (outside a function)",
		"p.c:4  return x + 1;":                             "helper",
		"p.c:6  ":                                          "p.c (outside a function)",
		"p.c:10  return helper(2);":                        "prog",
		"hash.h:3  return a;":                              "tss_bit",
		"other.h:3  x":                                     "other.h (outside a function)",
		"p.c:0  ":                                          "p.c (outside a function)",
	} {
		if got := fr.of(key); got != want {
			t.Errorf("of(%q) = %q, want %q", key, got, want)
		}
	}
}
