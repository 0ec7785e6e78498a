package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/acp-bridge/bridge"
	"gopkg.in/yaml.v3"
)

// Load reads, expands, decodes and validates the config file at path.
// Problems come back together as *Error (see Parse for the config returned
// beside it).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is Load on bytes already read; lookup resolves ${ENV} references
// (os.LookupEnv in production, a map in tests). On key, type or syntax
// problems it returns no config; on problems with values it returns the
// decoded config beside the *Error, for tools that report more problems of
// their own — never run on it.
func Parse(file string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	c := &Config{File: file, fromEnv: map[string]bool{}, lines: map[string]int{}}
	var problems []bridge.Problem
	add := func(line int, path, format string, args ...any) {
		problems = append(problems, bridge.Problem{File: file, Line: line, Key: path, Message: fmt.Sprintf(format, args...)})
	}

	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		msg := stripLine(strings.TrimPrefix(err.Error(), "yaml: "))
		if strings.Contains(msg, "cannot start any token") || strings.Contains(msg, "found a tab") {
			msg += " (YAML indents with spaces; a tab is not allowed there)"
		}
		add(yamlErrorLine(err), "", "%s", msg)
		return nil, &Error{problems}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		add(extra.Line, "", "a second YAML document (after ---) is not allowed: the config is one document")
		return nil, &Error{problems}
	}
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			add(root.Line, "", "the config must be a mapping of keys (mode:, server:, …)")
			return nil, &Error{problems}
		}
		walkScalars(root, "", func(n *yaml.Node, path string) {
			c.lines[path] = n.Line
			if !strings.Contains(n.Value, "$") {
				return
			}
			orig := n.Value
			v, used, err := expand(orig, lookup)
			if err != nil {
				add(n.Line, path, "%v", err)
				return
			}
			n.Value = v
			if n.Style == 0 {
				// Let YAML type the expanded value afresh, so that
				// max_body_bytes: ${MAX:-4096} is a number.
				n.Tag = ""
			}
			// A secret counts as from the environment only when the whole
			// value is one ${NAME} that the environment set: "sk_live_x${E}"
			// or a default written in the file are still in the file.
			if used && wholeRef.MatchString(orig) {
				c.fromEnv[path] = true
			}
		})
		recordLines(root, "", c.lines)
		checkKeys(root, reflect.TypeOf(Config{}), "", add)
		if err := root.Decode(c); err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				add(0, "", "%v", err)
			} else {
				for _, msg := range te.Errors {
					line := lineOf(msg)
					if hasLine(problems, line) {
						continue // an unset ${ENV} there was reported already
					}
					add(line, c.pathAt(line), "%s", typeMessage(stripLine(msg)))
				}
			}
		}
	}
	if len(problems) > 0 {
		return nil, &Error{dedupe(problems)}
	}
	c.applyDefaults()
	c.resolvePaths()
	problems = append(problems, c.validate()...)
	if len(problems) > 0 {
		// The config is returned with its value problems so that `bridge
		// check` can go on to the mapping and report everything at once;
		// callers must not run on it.
		return c, &Error{problems}
	}
	return c, nil
}

var wholeRef = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*\}$`)

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expand replaces ${NAME} and ${NAME:-default} in s; "$$" stands for a
// literal "$". It reports whether any variable was used.
func expand(s string, lookup func(string) (string, bool)) (string, bool, error) {
	var missing []string
	used := false
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := envRef.FindStringSubmatch(m)
		name, hasDefault, def := sub[1], sub[2] != "", sub[3]
		if v, ok := lookup(name); ok && (v != "" || !hasDefault) {
			// Only a value that really came from the environment counts:
			// a default written in the file is as visible as a literal.
			used = true
			return v
		}
		if hasDefault {
			return def
		}
		missing = append(missing, name)
		return ""
	})
	if len(missing) > 0 {
		return "", used, fmt.Errorf("environment variable %s is not set (set it, or write ${%s:-default})", strings.Join(missing, ", "), missing[0])
	}
	if rest := envRef.ReplaceAllString(s, ""); strings.Contains(rest, "${") {
		// The value is not quoted back: it may be a secret.
		return "", used, fmt.Errorf("malformed ${…} reference: use ${NAME} or ${NAME:-default}")
	}
	return out, used, nil
}

// walkScalars visits every scalar value (not keys) with its dotted path.
// Sequence items get their index as a path element.
func walkScalars(n *yaml.Node, path string, fn func(*yaml.Node, string)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkScalars(n.Content[i+1], join(path, n.Content[i].Value), fn)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			walkScalars(item, join(path, strconv.Itoa(i)), fn)
		}
	case yaml.ScalarNode:
		fn(n, path)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	nodeType        = reflect.TypeOf(yaml.Node{})
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// checkKeys reports keys that no field of t accepts. yaml.v3's KnownFields
// only exists on a Decoder over bytes; walking the node keeps env expansion
// and line numbers intact and reports every unknown key at once.
func checkKeys(n *yaml.Node, t reflect.Type, path string, add func(int, string, string, ...any)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || reflect.PointerTo(t).Implements(unmarshalerType) {
		return // decodes itself (Amount, Percent); validation checks it
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // a type error; Decode reports it
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			fields[name] = f.Type
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := join(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				add(k.Line, p, "key given twice (first at line %d)", first)
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				add(k.Line, p, "unknown key%s", suggest(k.Value, fields))
				continue
			}
			checkKeys(n.Content[i+1], ft, p, add)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			checkKeys(item, t.Elem(), join(path, strconv.Itoa(i)), add)
		}
	}
}

func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, name := range names {
		if d := distance(key, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf(" (known keys here: %s)", strings.Join(names, ", "))
}

// distance is the Levenshtein edit distance, for "did you mean".
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

func lineOf(msg string) int {
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func stripLine(msg string) string { return lineRe.ReplaceAllString(msg, "") }

func yamlErrorLine(err error) int {
	if m := regexp.MustCompile(`line (\d+)`).FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func dedupe(ps []bridge.Problem) []bridge.Problem {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	out := ps[:0]
	seen := map[string]bool{}
	for _, p := range ps {
		if k := p.String(); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// resolvePaths makes file paths relative to the config file's folder, so the
// bridge behaves the same whatever directory it is started from.
func (c *Config) resolvePaths() {
	dir := filepath.Dir(c.File)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.Store.CSV.Path = abs(c.Store.CSV.Path)
	c.Store.CSV.OrdersPath = abs(c.Store.CSV.OrdersPath)
	c.Store.CSV.OrderStatusPath = abs(c.Store.CSV.OrderStatusPath)
	c.Feed.Dir = abs(c.Feed.Dir)
	if c.Storage.Driver == "sqlite" && !strings.HasPrefix(string(c.Storage.DSN), "file:") {
		c.Storage.DSN = Secret(abs(string(c.Storage.DSN)))
	}
}

func hasLine(ps []bridge.Problem, line int) bool {
	for _, p := range ps {
		if line > 0 && p.Line == line {
			return true
		}
	}
	return false
}

// pathAt returns the key path of the value on a line ("" if none).
func (c *Config) pathAt(line int) string {
	// The shortest path on the line is the key that has the wrong type
	// ("server" for `server: {x: 1}` expected as a duration, not "server.x").
	best := ""
	for p, l := range c.lines {
		if l == line && (best == "" || len(p) < len(best) || len(p) == len(best) && p < best) {
			best = p
		}
	}
	// Sequence items are reported at the list itself.
	if i := strings.LastIndexByte(best, '.'); i >= 0 {
		if _, err := strconv.Atoi(best[i+1:]); err == nil {
			best = best[:i]
		}
	}
	return best
}

var unmarshalRe = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")

// typeMessage turns yaml.v3's "cannot unmarshal !!str `lots` into int64"
// into words a shop admin knows.
func typeMessage(msg string) string {
	m := unmarshalRe.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	have := m[2]
	switch target := m[3]; {
	case strings.HasPrefix(target, "int") || strings.HasPrefix(target, "uint"):
		return fmt.Sprintf("want a whole number, have %q", have)
	case strings.HasPrefix(target, "float"):
		return fmt.Sprintf("want a number, have %q", have)
	case target == "time.Duration":
		return fmt.Sprintf("want a duration such as 30s, 15m or 2h, have %q", have)
	case target == "bool":
		return fmt.Sprintf("want true or false, have %q", have)
	case strings.HasPrefix(target, "[]"):
		return fmt.Sprintf("want a list such as [a, b], have %q", have)
	case target == "string" || target == "config.Secret":
		return fmt.Sprintf("want text, have a %s", map[string]string{"map": "section of keys", "seq": "list"}[m[1]])
	case strings.HasPrefix(target, "config."):
		return fmt.Sprintf("want a section of keys, have %q", have)
	}
	return msg
}

// recordLines notes the line of every section and list too (scalars are
// noted while expanding), so a type error on `country: {a: 1}` names
// merchant.country.
func recordLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			if _, ok := lines[p]; !ok {
				lines[p] = n.Content[i].Line // the key's line: a block section's node starts at its first child
			}
			recordLines(n.Content[i+1], p, lines)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			recordLines(item, join(path, strconv.Itoa(i)), lines)
		}
	}
}
