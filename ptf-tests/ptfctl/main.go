// Command ptfctl is the Go side of graygw's PTF suite (ptf-tests/): what the
// Python tests cannot compute themselves, done with the project's own packages so
// that the tests and the controller share one definition of every table.
//
//	ptfctl intent   translate a test-vector state (testvectors/pipeline.json) into
//	                an intent document, and sort the vector cases into those the
//	                intent reproduces and those only raw table contents can
//	ptfctl expect   read the tables a gateway holds over P4Runtime and run frames
//	                through the reference model over them (the oracle)
//	ptfctl tables   become the gateway's primary P4Runtime client, replace its
//	                tables with a test-vector state until stdin closes, then put
//	                back exactly what it held (the table-level group)
//	ptfctl xdp-pass attach an XDP_PASS program to veths, so that frames the
//	                gateway sends back with XDP_TX reach PTF at once
//
// docs/testing.md explains the split between the controller-driven and the
// table-level groups.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `ptfctl: helpers of graygw's PTF suite (docs/testing.md).

Usage:
  ptfctl intent -vectors FILE -state NAME [-p4runtime HOST:PORT] [-device-id N]
                [-iface N=IFNAME ...] [-o FILE] [-cases FILE]
  ptfctl expect -p4rt HOST:PORT [-device-id N] [-vectors FILE -case NAME]
                (frames as hex, one a line, on stdin, unless -case)
  ptfctl tables -p4rt HOST:PORT [-device-id N] -vectors FILE -state NAME
  ptfctl xdp-pass IFNAME...

Run 'ptfctl COMMAND -h' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "intent":
		err = cmdIntent(args[1:], stdout)
	case "expect":
		err = cmdExpect(args[1:], stdin, stdout)
	case "tables":
		err = cmdTables(args[1:], stdin, stdout, stderr)
	case "xdp-pass":
		err = cmdXDPPass(args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ptfctl: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "ptfctl:", err)
		return 1
	}
	return 0
}
