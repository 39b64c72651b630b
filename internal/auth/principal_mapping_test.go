package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
)

// The rules of Kafka's documentation (security.html, "Customizing SSL User Name") and of its
// SslPrincipalMapper tests.
const kafkaDocRules = `RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,
RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,
RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,
DEFAULT`

const kafkaTestRules = `RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT`

func TestSSLPrincipalMapping(t *testing.T) {
	for _, c := range []struct{ rules, dn, want string }{
		// The documentation's two examples.
		{kafkaDocRules, "CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "serviceuser"},
		{kafkaDocRules, "CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "adminuser@admin"},
		{kafkaTestRules, "CN=Duke,OU=ServiceUsers,O=Org,C=US", "duke"},
		{kafkaTestRules, "CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme"},
		{kafkaTestRules, "cn=duke,ou=sme,dc=mycp,dc=com", "DUKE@SME"},
		{kafkaTestRules, "cN=duke,OU=JavaSoft,O=Sun Microsystems", "DUKE"},
		{kafkaTestRules, "OU=JavaSoft,O=Sun Microsystems,C=US", "OU=JavaSoft,O=Sun Microsystems,C=US"},
		{"", "CN=x,O=y", "CN=x,O=y"},
		{"DEFAULT", "CN=x,O=y", "CN=x,O=y"},
		// An escaped comma inside a name, and a comma inside a rule's pattern.
		{`RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT`, `CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz`, `Tkac\, Adam`},
		// A group number beyond the pattern's is literal; \$ is a literal $.
		{`RULE:^CN=(.*?),O=(.*?)$/$1@$3\$/`, "CN=a,O=b", "a@$3$"},
		// $12 with one group is group 1 then "2".
		{`RULE:^CN=(.*?),O=.*$/$12/U`, "CN=a,O=b", "A2"},
	} {
		m, err := ParseSSLPrincipalMappingRules(c.rules)
		if err != nil {
			t.Errorf("rules %q: %v", c.rules, err)
			continue
		}
		if got, err := m.Name(c.dn); err != nil || got != c.want {
			t.Errorf("rules %q on %q: %q %v, want %q", c.rules, c.dn, got, err, c.want)
		}
	}

	m, _ := ParseSSLPrincipalMappingRules(`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/`)
	if _, err := m.Name("CN=x,OU=Other"); !errors.Is(err, ErrNoMatchingRule) {
		t.Errorf("no rule applies: %v", err)
	}
}

func TestSSLPrincipalMappingRulesParse(t *testing.T) {
	valid := []string{"DEFAULT", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
		"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L", "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
		"RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/", "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/", kafkaDocRules, kafkaTestRules}
	for _, r := range valid {
		if _, err := ParseSSLPrincipalMappingRules(r); err != nil {
			t.Errorf("valid %q: %v", r, err)
		}
	}
	invalid := []string{"default", "DEFAUL", "DEFAULT/L", "DEFAULT/U", "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
		"rule:^CN=(.*?),OU=ServiceUsers.*$/$1/", "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
		"RULE:^CN=(.*?),OU=ServiceUsers.*$/L", "RULE:^CN=(.*?),OU=ServiceUsers.*$/U", "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU"}
	for _, r := range invalid {
		if _, err := ParseSSLPrincipalMappingRules(r); err == nil {
			t.Errorf("invalid %q parsed", r)
		}
	}
	// Splitting: rules separated by commas and spaces, a comma inside a pattern kept.
	m, err := ParseSSLPrincipalMappingRules(" DEFAULT ,  RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/ , DEFAULT")
	if err != nil || len(m.rules) != 3 || m.rules[1].pattern.String() != "^CN=(.*?),OU=ServiceUsers.*$" {
		t.Errorf("split: %v %+v", err, m)
	}
}

// selfSigned returns a certificate whose subject is the given RDN sequence.
func selfSigned(t *testing.T, subject pkix.RDNSequence) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := asn1.Marshal(subject)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: raw}, &x509.Certificate{SerialNumber: big.NewInt(1), RawSubject: raw}, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestDistinguishedName: subjects written as Java's X500Principal.getName() writes them.
func TestDistinguishedName(t *testing.T) {
	atv := func(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: oid, Value: v}
	}
	var (
		cn    = asn1.ObjectIdentifier{2, 5, 4, 3}
		c     = asn1.ObjectIdentifier{2, 5, 4, 6}
		o     = asn1.ObjectIdentifier{2, 5, 4, 10}
		ou    = asn1.ObjectIdentifier{2, 5, 4, 11}
		st    = asn1.ObjectIdentifier{2, 5, 4, 8}
		dc    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
		uid   = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
		email = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	)
	rdn := func(atvs ...pkix.AttributeTypeAndValue) pkix.RelativeDistinguishedNameSET { return atvs }
	for _, tc := range []struct {
		name    string
		subject pkix.RDNSequence
		want    string
	}{
		{"last RDN first", pkix.RDNSequence{rdn(atv(c, "US")), rdn(atv(st, "MD")), rdn(atv(o, "Sun")), rdn(atv(ou, "JavaSoft")), rdn(atv(cn, "Duke"))},
			"CN=Duke,OU=JavaSoft,O=Sun,ST=MD,C=US"},
		{"DC and UID by keyword", pkix.RDNSequence{rdn(atv(dc, "com")), rdn(atv(dc, "example")), rdn(atv(uid, "jdoe"))},
			"UID=jdoe,DC=example,DC=com"},
		{"multi-valued RDN", pkix.RDNSequence{rdn(atv(o, "Org")), rdn(atv(cn, "a"), atv(ou, "b"))}, "CN=a+OU=b,O=Org"},
		{"escapes", pkix.RDNSequence{rdn(atv(cn, `a,b=c+d<e>f#g;h"i\j`))}, `CN=a\,b\=c\+d\<e\>f\#g\;h\"i\\j`},
		{"leading and trailing spaces", pkix.RDNSequence{rdn(atv(cn, "  x y "))}, `CN=\ \ x y\ `},
		// An attribute type without a keyword: its OID and the value's DER encoding (a
		// UTF8String here, as Go encodes "@").
		{"email by OID", pkix.RDNSequence{rdn(atv(cn, "d")), rdn(atv(email, "d@x"))}, "1.2.840.113549.1.9.1=#0c03644078,CN=d"},
	} {
		if got := DistinguishedName(selfSigned(t, tc.subject)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
