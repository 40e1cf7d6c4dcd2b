// Command gen writes the pipeline test vectors (testvectors/pipeline.json)
// and the IPv6 ones (testvectors/ipv6.json).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/graygw/graygw/testvectors"
)

func main() {
	out := flag.String("o", "pipeline.json", "file to write the IPv4 vectors to")
	out6 := flag.String("o6", "ipv6.json", "file to write the IPv6 vectors to")
	flag.Parse()
	for _, v := range []struct {
		path string
		gen  func() (*testvectors.File, error)
	}{{*out, testvectors.Generate}, {*out6, testvectors.GenerateIPv6}} {
		f, err := v.gen()
		if err == nil {
			var b []byte
			if b, err = testvectors.Marshal(f); err == nil {
				err = os.WriteFile(v.path, b, 0o644)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		fmt.Printf("wrote %d cases to %s\n", len(f.Cases), v.path)
	}
}
