// Package compiletest loads and compiles the intent documents tests start
// from, failing the test on any error (naming the document): the step before
// a test looks at the intent or the tables a document makes.
package compiletest

import (
	"testing"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
)

// Load loads the intent document doc.
func Load(t testing.TB, doc string) *intent.Intent {
	t.Helper()
	in, err := intent.Load([]byte(doc))
	if err != nil {
		t.Fatalf("intent: %v\n%s", err, doc)
	}
	return in
}

// Doc loads the intent document doc and compiles it (no previous result).
func Doc(t testing.TB, doc string) (*intent.Intent, *compile.Result) {
	t.Helper()
	return Next(t, doc, nil)
}

// Next loads the intent document doc and compiles it over prev, the result
// of the version before.
func Next(t testing.TB, doc string, prev *compile.Result) (*intent.Intent, *compile.Result) {
	t.Helper()
	in := Load(t, doc)
	res, err := compile.Compile(in, prev)
	if err != nil {
		t.Fatal(err)
	}
	return in, res
}
