package metadata

import (
	"bytes"
	"fmt"
	"maps"
)

// Record types of SCRAM credentials.
const (
	TypeUserScramCredential       = "UserScramCredential"
	TypeRemoveUserScramCredential = "RemoveUserScramCredential"
)

// UserScramCredential sets one user's credential for one SCRAM mechanism (Kafka's
// UserScramCredentialRecord): the salt, the iteration count and the keys derived from the
// salted password (RFC 5802's StoredKey and ServerKey). Neither the password nor the salted
// password is stored.
type UserScramCredential struct {
	Name       string `json:"name"`
	Mechanism  string `json:"mechanism"`
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"storedKey"`
	ServerKey  []byte `json:"serverKey"`
	Iterations int32  `json:"iterations"`
}

// RemoveUserScramCredential deletes one user's credential for one mechanism (Kafka's
// RemoveUserScramCredentialRecord).
type RemoveUserScramCredential struct {
	Name      string `json:"name"`
	Mechanism string `json:"mechanism"`
}

// ScramCredential is a stored credential in the image.
type ScramCredential struct {
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"storedKey"`
	ServerKey  []byte `json:"serverKey"`
	Iterations int32  `json:"iterations"`
}

// RecordType implements Record.
func (UserScramCredential) RecordType() string { return TypeUserScramCredential }

// RecordType implements Record.
func (RemoveUserScramCredential) RecordType() string { return TypeRemoveUserScramCredential }

// ScramCredential returns a user's credential for a mechanism.
func (img *Image) ScramCredential(user, mechanism string) (ScramCredential, bool) {
	c, ok := img.ScramCredentials[user][mechanism]
	return c, ok
}

func (img *Image) applyUserScramCredential(r UserScramCredential) (*Image, error) {
	if r.Name == "" || r.Mechanism == "" || len(r.StoredKey) == 0 || len(r.ServerKey) == 0 || r.Iterations <= 0 {
		return img, fmt.Errorf("%w: incomplete SCRAM credential of %q", ErrInvalidRecord, r.Name)
	}
	next := img.clone()
	c := ScramCredential{Salt: bytes.Clone(r.Salt), StoredKey: bytes.Clone(r.StoredKey), ServerKey: bytes.Clone(r.ServerKey), Iterations: r.Iterations}
	next.ScramCredentials = withEntry(img.ScramCredentials, r.Name, withEntry(img.ScramCredentials[r.Name], r.Mechanism, c))
	return next, nil
}

func (img *Image) applyRemoveUserScramCredential(r RemoveUserScramCredential) (*Image, error) {
	if _, ok := img.ScramCredentials[r.Name][r.Mechanism]; !ok {
		return img, fmt.Errorf("%w: no %s credential of %q", ErrInvalidRecord, r.Mechanism, r.Name)
	}
	next := img.clone()
	user := maps.Clone(img.ScramCredentials[r.Name])
	delete(user, r.Mechanism)
	next.ScramCredentials = maps.Clone(img.ScramCredentials)
	if len(user) == 0 {
		delete(next.ScramCredentials, r.Name)
	} else {
		next.ScramCredentials[r.Name] = user
	}
	return next, nil
}

func scramEqual(a, b map[string]ScramCredential) bool {
	return maps.EqualFunc(a, b, func(x, y ScramCredential) bool {
		return bytes.Equal(x.Salt, y.Salt) && bytes.Equal(x.StoredKey, y.StoredKey) &&
			bytes.Equal(x.ServerKey, y.ServerKey) && x.Iterations == y.Iterations
	})
}
