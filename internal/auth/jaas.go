package auth

import (
	"fmt"
	"strings"
)

// JAAS is one login module entry of a JAAS configuration, as Kafka's sasl.jaas.config holds:
//
//	org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";
type JAAS struct {
	Module  string
	Flag    string
	Options map[string]string
}

// ParseJAAS parses a single login module entry: the module's class, its control flag
// (required, requisite, sufficient, optional), then name=value options (values quoted or
// not), ended by a semicolon.
func ParseJAAS(s string) (JAAS, error) {
	p := jaasParser{s: strings.TrimSpace(s)}
	var j JAAS
	j.Module = p.word()
	j.Flag = p.word()
	if j.Module == "" || j.Flag == "" {
		return j, fmt.Errorf("JAAS config: expected <login module class> <control flag> options;")
	}
	switch j.Flag {
	case "required", "requisite", "sufficient", "optional":
	default:
		return j, fmt.Errorf("JAAS config: invalid control flag %q", j.Flag)
	}
	j.Options = map[string]string{}
	for {
		p.space()
		if p.done() {
			return j, fmt.Errorf("JAAS config: missing ';' at the end")
		}
		if p.s[p.i] == ';' {
			p.i++
			p.space()
			if !p.done() {
				return j, fmt.Errorf("JAAS config: only one login module is allowed, found more after ';'")
			}
			return j, nil
		}
		name := p.until("=; \t\r\n")
		p.space()
		if name == "" || p.done() || p.s[p.i] != '=' {
			return j, fmt.Errorf("JAAS config: expected name=value at %q", p.s[p.i:])
		}
		p.i++
		p.space()
		val, err := p.value()
		if err != nil {
			return j, err
		}
		j.Options[name] = val
	}
}

type jaasParser struct {
	s string
	i int
}

func (p *jaasParser) done() bool { return p.i >= len(p.s) }

func (p *jaasParser) space() {
	for !p.done() && strings.ContainsRune(" \t\r\n", rune(p.s[p.i])) {
		p.i++
	}
}

func (p *jaasParser) until(stop string) string {
	start := p.i
	for !p.done() && !strings.ContainsRune(stop, rune(p.s[p.i])) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *jaasParser) word() string {
	p.space()
	return p.until(" \t\r\n;")
}

func (p *jaasParser) value() (string, error) {
	if p.done() {
		return "", fmt.Errorf("JAAS config: missing value at the end")
	}
	if p.s[p.i] != '"' {
		return p.until("; \t\r\n"), nil
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\' && !p.done():
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '"':
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("JAAS config: unterminated quoted value")
}

// PlainUsers returns the users of a PlainLoginModule entry: its user_NAME="password" options.
func (j JAAS) PlainUsers() map[string]string {
	users := map[string]string{}
	for k, v := range j.Options {
		if name, ok := strings.CutPrefix(k, "user_"); ok && name != "" {
			users[name] = v
		}
	}
	return users
}
