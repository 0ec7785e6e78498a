// Command gentools writes the MCP door's tool definitions (tools.json) from
// the ACP specification data vendored in internal/acpspec: the tools of the
// MCP binding's OpenRPC document, their input schemas with every $ref
// resolved and inlined. `go generate ./mcpapi` runs it; a test in mcpapi
// fails when the file and the spec data disagree.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/acp-bridge/bridge/internal/acpspec"
)

func main() {
	out := flag.String("out", "tools.json", "file to write")
	version := flag.String("version", "2026-04-17", "ACP API version whose MCP binding to use")
	flag.Parse()
	if err := run(*out, *version); err != nil {
		fmt.Fprintln(os.Stderr, "gentools:", err)
		os.Exit(1)
	}
}

func run(out, version string) error {
	b, err := acpspec.MCPTools(version)
	if err != nil {
		return fmt.Errorf("tools of %s: %w", version, err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
