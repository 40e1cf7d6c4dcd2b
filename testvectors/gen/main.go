// Command gen writes the pipeline test vectors (testvectors/pipeline.json).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/graygw/graygw/testvectors"
)

func main() {
	out := flag.String("o", "pipeline.json", "file to write")
	flag.Parse()
	f, err := testvectors.Generate()
	if err == nil {
		var b []byte
		if b, err = testvectors.Marshal(f); err == nil {
			err = os.WriteFile(*out, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d cases to %s\n", len(f.Cases), *out)
}
