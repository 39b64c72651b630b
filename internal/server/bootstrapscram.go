package server

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
)

// SCRAM credentials bootstrapped at format time (Kafka's kafka-storage format --add-scram,
// KIP-900): the metadata directory's bootstrapScramFile holds them (a JSON array of
// UserScramCredential records: salt, stored and server keys, iterations; never a password).
// The first active controller of a new cluster commits them with the cluster id, and until a
// node's image has the metadata (a new cluster's quorum forming, a node that has not replayed
// the log) its controller listener checks SCRAM logins of Raft connections against them: a
// SCRAM controller listener cannot otherwise authenticate the nodes before the quorum exists.
const bootstrapScramFile = "bootstrap.scram.json"

// Kafka's bounds and default of a SCRAM credential's iterations.
const (
	scramMinIterations     = 4096
	scramMaxIterations     = 16384
	scramDefaultIterations = 4096
)

// ParseAddScram parses one --add-scram value as kafka-storage takes it:
// SCRAM-SHA-256=[name=alice,password=alice-secret] (optionally iterations=N, salt=<base64>, or
// saltedpassword=<base64> with salt instead of password), and derives the credential.
func ParseAddScram(s string) (metadata.UserScramCredential, error) {
	var c metadata.UserScramCredential
	mech, rest, ok := strings.Cut(s, "=")
	if !ok || !auth.ScramMechanism(mech) {
		return c, fmt.Errorf("--add-scram %q: want SCRAM-SHA-256=[name=...,password=...] or SCRAM-SHA-512=[...]", s)
	}
	body, ok := strings.CutPrefix(rest, "[")
	if body, ok = strings.CutSuffix(body, "]"); !ok {
		return c, fmt.Errorf("--add-scram %q: the options go in [...]", s)
	}
	opts := map[string]string{}
	for _, kv := range strings.Split(body, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return c, fmt.Errorf("--add-scram %q: %q is not name=value", s, kv)
		}
		opts[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	c.Mechanism, c.Name, c.Iterations = mech, opts["name"], scramDefaultIterations
	if c.Name == "" {
		return c, fmt.Errorf("--add-scram %q: name is required", s)
	}
	if v, ok := opts["iterations"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < scramMinIterations || n > scramMaxIterations {
			return c, fmt.Errorf("--add-scram %q: iterations must be between %d and %d", s, scramMinIterations, scramMaxIterations)
		}
		c.Iterations = int32(n)
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	if v, ok := opts["salt"]; ok {
		var err error
		if salt, err = base64.StdEncoding.DecodeString(v); err != nil || len(salt) == 0 {
			return c, fmt.Errorf("--add-scram %q: salt must be base64", s)
		}
	}
	var salted []byte
	switch pw, sp := opts["password"], opts["saltedpassword"]; {
	case pw != "" && sp != "":
		return c, fmt.Errorf("--add-scram %q: give password or saltedpassword, not both", s)
	case sp != "":
		if _, ok := opts["salt"]; !ok {
			return c, fmt.Errorf("--add-scram %q: saltedpassword needs its salt", s)
		}
		var err error
		if salted, err = base64.StdEncoding.DecodeString(sp); err != nil {
			return c, fmt.Errorf("--add-scram %q: saltedpassword must be base64", s)
		}
	case pw != "":
		salted = saltedPassword(mech, pw, salt, int(c.Iterations))
	default:
		return c, fmt.Errorf("--add-scram %q: password is required", s)
	}
	cred := auth.NewScramCredential(mech, salt, salted, c.Iterations)
	c.Salt, c.StoredKey, c.ServerKey = cred.Salt, cred.StoredKey, cred.ServerKey
	return c, nil
}

// saltedPassword is SCRAM's Hi(password, salt, iterations) (PBKDF2 with the mechanism's HMAC).
func saltedPassword(mech, password string, salt []byte, iterations int) []byte {
	h, size := sha256.New, sha256.Size
	if mech == config.MechanismScramSHA512 {
		h, size = sha512.New, sha512.Size
	}
	key, _ := pbkdf2.Key(func() hash.Hash { return h() }, password, salt, iterations, size)
	return key
}

// writeBootstrapScram writes the credentials into the metadata directory dir.
func writeBootstrapScram(dir string, creds []metadata.UserScramCredential) error {
	b, err := json.MarshalIndent(creds, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSynced(dir, bootstrapScramFile, append(b, '\n'))
}

// readBootstrapScram reads the metadata directory's bootstrapped SCRAM credentials (none
// without the file).
func readBootstrapScram(cfg *config.Server) ([]metadata.UserScramCredential, error) {
	path := filepath.Join(cfg.MetadataLogDir, bootstrapScramFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var creds []metadata.UserScramCredential
	if err := json.Unmarshal(b, &creds); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return creds, nil
}

// checkBootstrapLogin checks that the node's own SCRAM login (user, pass with mech) matches a
// bootstrapped credential: without one the quorum could never authenticate its first
// connections.
func checkBootstrapLogin(cfg *config.Server, creds []metadata.UserScramCredential, mech, user, pass string) error {
	for _, c := range creds {
		if c.Name != user || c.Mechanism != mech {
			continue
		}
		want := auth.NewScramCredential(mech, c.Salt, saltedPassword(mech, pass, c.Salt, int(c.Iterations)), c.Iterations)
		if subtle.ConstantTimeCompare(want.StoredKey, c.StoredKey) != 1 {
			return fmt.Errorf("sasl.mechanism.controller.protocol=%s: the password of listener.name.%s.%s.sasl.jaas.config is not the one bootstrapped for %q in %s",
				mech, strings.ToLower(cfg.ControllerListener), strings.ToLower(mech), user, filepath.Join(cfg.MetadataLogDir, bootstrapScramFile))
		}
		return nil
	}
	return fmt.Errorf("sasl.mechanism.controller.protocol=%s: the nodes authenticate each other before the metadata log exists, so their %s credential must be bootstrapped, as Kafka's kafka-storage format --add-scram does: format every node with samsa storage format --add-scram '%s=[name=%s,password=...]'",
		mech, mech, mech, user)
}
