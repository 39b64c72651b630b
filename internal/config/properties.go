// Package config owns Samsa's settings: the broker's server.properties (with Kafka's property
// names, defaults and validation) and the per-topic configs with their broker-level synonyms,
// so that DescribeConfigs can report values, sources and defaults the way Kafka does.
package config

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ParseProperties reads a Java .properties file: `key=value`, `key: value` or `key value`
// lines, `#` and `!` comments, and lines continued with a trailing backslash. Keys and values
// are trimmed. Later keys override earlier ones.
func ParseProperties(r io.Reader) (map[string]string, error) {
	props := make(map[string]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	lineNo := 0
	var pending string
	for sc.Scan() {
		lineNo++
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if pending == "" && (line == "" || line[0] == '#' || line[0] == '!') {
			continue
		}
		if strings.HasSuffix(line, `\`) && !strings.HasSuffix(line, `\\`) {
			pending += strings.TrimSuffix(line, `\`)
			continue
		}
		line = pending + line
		pending = ""
		key, value, ok := splitProperty(line)
		if !ok {
			return nil, fmt.Errorf("line %d: expected key=value, got %q", lineNo, line)
		}
		props[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if pending != "" {
		key, value, ok := splitProperty(pending)
		if !ok {
			return nil, fmt.Errorf("line %d: expected key=value", lineNo)
		}
		props[key] = value
	}
	return props, nil
}

func splitProperty(line string) (key, value string, ok bool) {
	i := strings.IndexAny(line, "=: \t")
	if i <= 0 {
		return "", "", false
	}
	key = strings.TrimSpace(line[:i])
	rest := strings.TrimLeft(line[i:], " \t")
	if len(rest) > 0 && (rest[0] == '=' || rest[0] == ':') {
		rest = rest[1:]
	}
	return key, strings.TrimSpace(rest), key != ""
}

// ParseOverride splits a `key=value` command-line override.
func ParseOverride(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return "", "", fmt.Errorf("override %q: expected key=value", s)
	}
	return k, strings.TrimSpace(v), nil
}
