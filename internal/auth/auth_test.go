package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

func TestParseJAAS(t *testing.T) {
	j, err := ParseJAAS(`org.apache.kafka.common.security.plain.PlainLoginModule required
		username="admin" password="admin-secret" user_admin="admin-secret" user_alice="a\"b;c" debug=true;`)
	if err != nil {
		t.Fatal(err)
	}
	if j.Module != "org.apache.kafka.common.security.plain.PlainLoginModule" || j.Flag != "required" {
		t.Fatalf("module %q flag %q", j.Module, j.Flag)
	}
	users := j.PlainUsers()
	if len(users) != 2 || users["admin"] != "admin-secret" || users["alice"] != `a"b;c` {
		t.Fatalf("users %v", users)
	}
	if j.Options["username"] != "admin" || j.Options["debug"] != "true" {
		t.Fatalf("options %v", j.Options)
	}
	for _, bad := range []string{
		"", "Module", "Module required user_a=\"x\"", "Module maybe;", "Module required user_a=\"x;",
		"Module required a=1; Other required;", "Module required =1;",
	} {
		if _, err := ParseJAAS(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestPlain(t *testing.T) {
	s := NewServerWith([]string{"PLAIN"}, map[string]string{"alice": "secret"}, nil)
	for _, tc := range []struct {
		msg  string
		want string // "" for success
	}{
		{"\x00alice\x00secret", ""},
		{"alice\x00alice\x00secret", ""},
		{"\x00alice\x00wrong", "Authentication failed: Invalid username or password"},
		{"\x00bob\x00secret", "Authentication failed: Invalid username or password"},
		{"bob\x00alice\x00secret", "Authentication failed: Client requested an authorization id that is different from username"},
		{"\x00\x00secret", "Authentication failed: username not specified"},
		{"alice", "Invalid SASL/PLAIN response: expected 3 tokens, got 1"},
	} {
		sess, _ := s.Start("PLAIN")
		_, done, err := sess.Step([]byte(tc.msg))
		var f *Failure
		switch {
		case tc.want == "" && (err != nil || !done || sess.Principal() != "User:alice"):
			t.Errorf("%q: done %v err %v principal %s", tc.msg, done, err, sess.Principal())
		case tc.want != "" && (!errors.As(err, &f) || f.Message != tc.want):
			t.Errorf("%q: %v, want %q", tc.msg, err, tc.want)
		}
	}
	if _, ok := s.Start("SCRAM-SHA-256"); ok {
		t.Error("SCRAM-SHA-256 started on a PLAIN-only server")
	}
}

func TestScram(t *testing.T) {
	salt := []byte("0123456789abcdef")
	salted, _ := pbkdf2.Key(sha256.New, "pencil", salt, 4096, sha256.Size)
	cred := NewScramCredential("SCRAM-SHA-256", salt, salted, 4096)
	lookup := func(user, mech string) (ScramCredential, bool) {
		return cred, user == "user" && mech == "SCRAM-SHA-256"
	}
	s := NewServerWith([]string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, nil, lookup)
	run := func(user, pass string) (Session, error) {
		client, _ := scram.SHA256.NewClient(user, pass, "")
		conv := client.NewConversation()
		sess, _ := s.Start("SCRAM-SHA-256")
		in, _ := conv.Step("")
		for {
			out, done, err := sess.Step([]byte(in))
			if err != nil {
				return sess, err
			}
			next, cerr := conv.Step(string(out))
			if done {
				return sess, cerr
			}
			in = next
		}
	}
	sess, err := run("user", "pencil")
	if err != nil || sess.Principal() != "User:user" {
		t.Fatalf("good password: %v %s", err, sess.Principal())
	}
	var f *Failure
	if _, err := run("user", "crayon"); !errors.As(err, &f) || f.Message != "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256" {
		t.Fatalf("bad password: %v", err)
	}
	if _, err := run("nobody", "pencil"); !errors.As(err, &f) || f.Message != "Authentication failed: Invalid user credentials" || f.User != "nobody" {
		t.Fatalf("unknown user: %v", err)
	}
}

// FuzzSASL feeds arbitrary client messages to PLAIN and SCRAM: no panic.
// TestScramDoubledNonce: librdkafka 2.0.x sends its nonce twice in the client-final message
// (r=<client nonce><server's r>); Kafka accepts a nonce that ends with the server's, and so
// does Samsa. A nonce that does not end with it is refused.
func TestScramDoubledNonce(t *testing.T) {
	salt := []byte("salt-salt")
	salted, _ := pbkdf2.Key(sha512.New, "pw", salt, 4096, sha512.Size)
	cred := NewScramCredential("SCRAM-SHA-512", salt, salted, 4096)
	s := NewServerWith([]string{"SCRAM-SHA-512"}, nil, func(string, string) (ScramCredential, bool) { return cred, true })
	exchange := func(nonce func(cnonce, r string) string) error {
		sess, _ := s.Start("SCRAM-SHA-512")
		first := "n,,n=u,r=cnonce"
		out, _, err := sess.Step([]byte(first))
		if err != nil {
			return err
		}
		r := strings.TrimPrefix(strings.Split(string(out), ",")[0], "r=")
		c2wop := "c=biws,r=" + nonce("cnonce", r)
		authMsg := "n=u,r=cnonce," + string(out) + "," + c2wop
		mac := func(key []byte, msg string) []byte {
			m := hmac.New(sha512.New, key)
			m.Write([]byte(msg))
			return m.Sum(nil)
		}
		clientKey := mac(salted, "Client Key")
		sig := mac(cred.StoredKey, authMsg)
		for i := range sig {
			sig[i] ^= clientKey[i]
		}
		_, done, err := sess.Step([]byte(c2wop + ",p=" + base64.StdEncoding.EncodeToString(sig)))
		if err == nil && !done {
			return errors.New("not done")
		}
		return err
	}
	if err := exchange(func(_, r string) string { return r }); err != nil {
		t.Fatalf("standard nonce: %v", err)
	}
	if err := exchange(func(c, r string) string { return c + r }); err != nil {
		t.Fatalf("doubled nonce (librdkafka 2.0.x): %v", err)
	}
	if err := exchange(func(_, r string) string { return r + "x" }); err == nil {
		t.Fatal("a nonce not ending with the server's: accepted")
	}
}

// TestScramTokenAuthFirst: the client-first message's extensions choose the lookup: with
// tokenauth=true the user is a delegation token id (a user name is unknown there, a token id
// is unknown without it); a malformed extension fails the exchange. The whole exchange with a
// token runs over TCP in the broker's tests (franz-go's IsToken).
func TestScramTokenAuthFirst(t *testing.T) {
	s := fuzzScramServer() // user "user", token "tok1" of User:owner
	for _, tc := range []struct {
		msg   string
		ok    bool
		token bool
	}{
		{"n,,n=tok1,r=abc,tokenauth=true", true, true},
		{"n,,n=user,r=abc,tokenauth=false", true, false},
		{"n,,n=user,r=abc,other=1", true, false},
		{"n,,n=user,r=abc,tokenauth=true", false, true},
		{"n,,n=tok1,r=abc", false, false},
		{"n,,n=tok1,r=abc,tokenauth", false, false},
		{"n,,n=tok1,r=abc,=true", false, false},
	} {
		sess, _ := s.Start("SCRAM-SHA-256")
		_, _, err := sess.Step([]byte(tc.msg))
		var f *Failure
		switch {
		case tc.ok && err != nil:
			t.Errorf("%q: %v", tc.msg, err)
		case !tc.ok && !errors.As(err, &f):
			t.Errorf("%q: %v; want a *Failure", tc.msg, err)
		}
		if ss := sess.(*scramSession); ss.token != tc.token {
			t.Errorf("%q: token %v; want %v", tc.msg, ss.token, tc.token)
		}
		if tc.ok && tc.token && sess.Principal() != "User:owner" {
			t.Errorf("%q: principal %s", tc.msg, sess.Principal())
		}
	}
}
