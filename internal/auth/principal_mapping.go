package auth

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf16"
)

// ssl.principal.mapping.rules (Kafka's SslPrincipalMapper): the name of a client
// certificate's principal is its subject's distinguished name, as Java's
// X500Principal.getName() writes it (DistinguishedName), rewritten by the first rule that
// applies:
//
//	DEFAULT                        the distinguished name unchanged
//	RULE:pattern/replacement/[LU]  when the Java-style regular expression matches the whole
//	                               name, the name with every match replaced (Java's
//	                               replacement syntax: $1 a group, \x a literal x; a group
//	                               number beyond the pattern's is literal), then lower (L)
//	                               or upper (U) cased
//
// Rules are separated by commas (a comma inside a rule's pattern is part of it). A name no rule
// applies to fails the authentication. Differences from Java: patterns are RE2 (no
// look-around or back-references), and an empty match right after another is not replaced
// again (Java's replaceAll of "(.*)" on "x" gives two replacements, here one).

// Kafka's rule grammar (SslPrincipalMapper.RULE_PATTERN): group 1 DEFAULT; 2 the pattern,
// 4 the replacement, 6 the case flag; 7 anything else (an invalid rule, or empty).
const rulePattern = `(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)`

var (
	ruleSplitter = regexp.MustCompile(`\s*(` + rulePattern + `)\s*(,\s*|$)`)
	ruleParser   = regexp.MustCompile(`^(?:` + rulePattern + `)`)
)

// SSLPrincipalMapper maps distinguished names to principal names with
// ssl.principal.mapping.rules.
type SSLPrincipalMapper struct {
	rules []sslRule
	text  string
}

type sslRule struct {
	isDefault    bool
	pattern      *regexp.Regexp // as written, for the replacements
	whole        *regexp.Regexp // anchored at both ends: does the rule apply
	replacement  string
	lower, upper bool
}

// ParseSSLPrincipalMappingRules parses ssl.principal.mapping.rules ("" is DEFAULT); errors
// are Kafka's "Invalid rule" messages.
func ParseSSLPrincipalMappingRules(text string) (*SSLPrincipalMapper, error) {
	if strings.TrimSpace(text) == "" {
		text = "DEFAULT"
	}
	m := &SSLPrincipalMapper{text: text}
	for _, split := range ruleSplitter.FindAllStringSubmatch(strings.TrimSpace(text), -1) {
		rule := split[1]
		g := ruleParser.FindStringSubmatchIndex(rule)
		if g == nil {
			return nil, fmt.Errorf("Invalid rule: %s", rule)
		}
		if g[1] != len(rule) {
			return nil, fmt.Errorf("Invalid rule: `%s`, unmatched substring: `%s`", rule, rule[g[1]:])
		}
		group := func(i int) (string, bool) {
			if g[2*i] < 0 {
				return "", false
			}
			return rule[g[2*i]:g[2*i+1]], true
		}
		if _, ok := group(1); ok {
			m.rules = append(m.rules, sslRule{isDefault: true})
			continue
		}
		pat, ok := group(2)
		if !ok {
			continue // an empty rule is ignored
		}
		repl, _ := group(4)
		flag, _ := group(6)
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("Invalid rule: %s: %w", rule, err)
		}
		m.rules = append(m.rules, sslRule{pattern: re, whole: regexp.MustCompile(`^(?:` + pat + `)$`),
			replacement: repl, lower: flag == "L", upper: flag == "U"})
	}
	return m, nil
}

// IsDefault reports whether the rules are DEFAULT alone (names are the distinguished names).
func (m *SSLPrincipalMapper) IsDefault() bool {
	return len(m.rules) == 1 && m.rules[0].isDefault
}

// ErrNoMatchingRule is the error of a name no rule applies to.
var ErrNoMatchingRule = errors.New("no ssl.principal.mapping.rules rule applies")

// Name returns the principal name of a distinguished name.
func (m *SSLPrincipalMapper) Name(dn string) (string, error) {
	for _, r := range m.rules {
		if name, ok := r.apply(dn); ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w to %s, rules %s", ErrNoMatchingRule, dn, m.text)
}

func (r sslRule) apply(dn string) (string, bool) {
	if r.isDefault {
		return dn, true
	}
	if !r.whole.MatchString(dn) {
		return "", false
	}
	var b strings.Builder
	last := 0
	for _, loc := range r.pattern.FindAllStringSubmatchIndex(dn, -1) {
		b.WriteString(dn[last:loc[0]])
		expandJavaReplacement(&b, r.replacement, dn, loc)
		last = loc[1]
	}
	b.WriteString(dn[last:])
	out := b.String()
	switch {
	case r.lower:
		out = strings.ToLower(out)
	case r.upper:
		out = strings.ToUpper(out)
	}
	return out, true
}

// expandJavaReplacement writes Java's Matcher replacement of one match (loc, the submatch
// indexes in s): \x is x; $n is group n, n as many digits as still name a group (Java's
// rule); a $ followed by a first digit beyond the groups is literal, as Kafka escapes it
// (escapeLiteralBackReferences).
func expandJavaReplacement(b *strings.Builder, repl, s string, loc []int) {
	groups := len(loc)/2 - 1
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		switch {
		case c == '\\' && i+1 < len(repl):
			i++
			b.WriteByte(repl[i])
		case c == '$' && i+1 < len(repl) && isDigit(repl[i+1]) && int(repl[i+1]-'0') <= groups:
			n := int(repl[i+1] - '0')
			i++
			for i+1 < len(repl) && isDigit(repl[i+1]) && n*10+int(repl[i+1]-'0') <= groups {
				n = n*10 + int(repl[i+1]-'0')
				i++
			}
			if loc[2*n] >= 0 {
				b.WriteString(s[loc[2*n]:loc[2*n+1]])
			}
		default:
			b.WriteByte(c)
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// rfc2253Keywords are the attribute types Java's X500Principal.getName() names by keyword;
// the others are written as their OID with the value's DER encoding in hex.
var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

// rawATV is an attribute type and value whose value keeps its encoding.
type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rawRDNSET is one relative distinguished name (the SET suffix makes encoding/asn1 read a SET).
type rawRDNSET []rawATV

// DistinguishedName writes a certificate's subject as Java's X500Principal.getName() (RFC
// 2253) does, the name Kafka maps to a principal: the RDNs from the last to the first,
// separated by commas, multi-valued ones joined by +, the known attribute types by keyword,
// string values with ,=+<>#;"\ escaped and leading or trailing spaces escaped, other values as
// OID=#hex of their DER encoding.
func DistinguishedName(cert *x509.Certificate) string {
	var seq []rawRDNSET
	if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) > 0 {
		return cert.Subject.String()
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if i < len(seq)-1 {
			b.WriteByte(',')
		}
		for j, atv := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			writeATV(&b, atv)
		}
	}
	return b.String()
}

func writeATV(b *strings.Builder, atv rawATV) {
	oid := atv.Type.String()
	kw, known := rfc2253Keywords[oid]
	s, isString := derString(atv.Value)
	if !known {
		kw = oid
	}
	if !known || !isString {
		b.WriteString(kw)
		b.WriteString("=#")
		b.WriteString(hex.EncodeToString(atv.Value.FullBytes))
		return
	}
	b.WriteString(kw)
	b.WriteByte('=')
	var v strings.Builder
	for _, r := range s {
		switch {
		case strings.ContainsRune(`,=+<>#;"\`, r):
			v.WriteByte('\\')
			v.WriteRune(r)
		case r == 0:
			v.WriteString(`\00`)
		default:
			v.WriteRune(r)
		}
	}
	val := v.String()
	lead := len(val) - len(strings.TrimLeft(val, " \r"))
	trail := len(strings.TrimRight(val, " \r"))
	for i := 0; i < len(val); i++ {
		if (i < lead || i >= trail) && (val[i] == ' ' || val[i] == '\r') {
			b.WriteByte('\\')
		}
		b.WriteByte(val[i])
	}
}

// derString decodes the string types Java writes as text (UTF8String, PrintableString,
// T61String, IA5String, GeneralString, BMPString).
func derString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagT61String, asn1.TagIA5String, asn1.TagGeneralString:
		return string(v.Bytes), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(u)), true
	}
	return "", false
}
