package testvectors

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

//go:generate go run ./gen -o pipeline.json

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
