package testvectors

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

//go:generate go run ./gen -o pipeline.json -o6 ipv6.json

// JSON is the committed pipeline.json.
//
//go:embed pipeline.json
var JSON []byte

// Committed parses the committed pipeline.json.
func Committed() (*File, error) {
	var f File
	if err := json.Unmarshal(JSON, &f); err != nil {
		return nil, fmt.Errorf("testvectors: pipeline.json: %w", err)
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

// JSONIPv6 is the committed ipv6.json: the IPv6 cases (issue 19), apart
// from pipeline.json until every target implements IPv6.
//
//go:embed ipv6.json
var JSONIPv6 []byte

// IPv6 parses the committed ipv6.json.
func IPv6() (*File, error) {
	var f File
	if err := json.Unmarshal(JSONIPv6, &f); err != nil {
		return nil, fmt.Errorf("testvectors: ipv6.json: %w", err)
	}
	return &f, nil
}
