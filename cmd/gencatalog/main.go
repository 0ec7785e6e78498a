// Command gencatalog writes a large synthetic CSV catalog in the demo
// catalog's columns, for benchmarks and load tests of the catalog pipeline:
//
//	go run ./cmd/gencatalog -variants 1000000 -out /tmp/catalog-1m.csv
//
// Products have 1–5 variants (3 on average) with realistic text sizes; the
// output is the same for the same flags.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/acp-bridge/bridge/internal/cataloggen"
)

func main() {
	variants := flag.Int("variants", 100000, "number of variant rows to write")
	out := flag.String("out", "-", "output file (- for stdout)")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	var w io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		w = f
		defer func() {
			if err := f.Close(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}()
	}
	if err := cataloggen.Write(w, *variants, *seed); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
