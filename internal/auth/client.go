package auth

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/samsa-io/samsa/internal/config"
)

// ClientSASL is the franz-go client side of a served SASL mechanism, logging in as user.
func ClientSASL(mechanism, user, pass string) (sasl.Mechanism, error) {
	switch mechanism {
	case config.MechanismPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case config.MechanismScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case config.MechanismScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("SASL mechanism %q is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", mechanism)
}
