package testvectors

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"testing"
)

//go:generate go run ./gen -o pipeline.json -o6 ipv6.json

// JSON is the committed pipeline.json.
//
//go:embed pipeline.json
var JSON []byte

// JSONIPv6 is the committed ipv6.json: the IPv6 cases (issue 19), apart
// from pipeline.json until every target implements IPv6.
//
//go:embed ipv6.json
var JSONIPv6 []byte

// Committed parses the committed pipeline.json.
func Committed() (*File, error) { return parse("pipeline.json", JSON) }

// IPv6 parses the committed ipv6.json.
func IPv6() (*File, error) { return parse("ipv6.json", JSONIPv6) }

// Both parses both committed files for a test, pipeline.json's and
// ipv6.json's vectors, and fails tb if either does not parse: the start of
// every test that runs the vectors through a target.
func Both(tb testing.TB) (basic, ipv6 *File) {
	tb.Helper()
	basic, err := Committed()
	if err != nil {
		tb.Fatal(err)
	}
	ipv6, err = IPv6()
	if err != nil {
		tb.Fatal(err)
	}
	return basic, ipv6
}

func parse(name string, b []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("testvectors: %s: %w", name, err)
	}
	return &f, nil
}

// Marshal renders f as pipeline.json is written: indented, one trailing newline.
func Marshal(f *File) ([]byte, error) {
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
