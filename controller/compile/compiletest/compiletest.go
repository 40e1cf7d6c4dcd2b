// Package compiletest loads and compiles the intent documents tests start
// from, failing the test on any error: the step before a test looks at the
// tables a document makes.
package compiletest

import (
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
)

// Doc loads the intent document doc and compiles it (no previous result).
func Doc(t testing.TB, doc string) (*intent.Intent, *compile.Result) {
	t.Helper()
	return Next(t, doc, nil)
}

// Next loads the intent document doc and compiles it over prev, the result
// of the version before.
func Next(t testing.TB, doc string, prev *compile.Result) (*intent.Intent, *compile.Result) {
	t.Helper()
	in, err := intent.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	res, err := compile.Compile(in, prev)
	if err != nil {
		t.Fatal(err)
	}
	return in, res
}
