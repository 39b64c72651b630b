package controller

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/metadata"
)

// SCRAM iteration bounds, as Kafka's ScramMechanism (4096 minimum, 16384 maximum).
const (
	ScramMinIterations = 4096
	ScramMaxIterations = 16384
)

// ScramUpsertion sets a user's credential for a mechanism from a salted password
// (AlterUserScramCredentials' upsertion).
type ScramUpsertion struct {
	Name, Mechanism string
	Iterations      int32
	Salt            []byte
	SaltedPassword  []byte
}

// ScramDeletion removes a user's credential for a mechanism.
type ScramDeletion struct{ Name, Mechanism string }

// ScramResult is the outcome for one user of AlterUserScramCredentials.
type ScramResult struct {
	User string
	Err  error
}

func kafkaErrorf(code *kerr.Error, format string, args ...any) error {
	return &KafkaError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AlterUserScramCredentials applies deletions and upsertions of SCRAM credentials with
// Kafka's checks (ControllerApis/ScramControlManager): a user and mechanism named twice in one request is
// DUPLICATE_RESOURCE, an empty name or iterations out of bounds UNACCEPTABLE_CREDENTIAL, an
// unknown mechanism UNSUPPORTED_SASL_MECHANISM, deleting a missing credential
// RESOURCE_NOT_FOUND. The users that pass are written in one batch; results follow the users'
// first appearance.
func (c *Controller) AlterUserScramCredentials(ctx context.Context, dels []ScramDeletion, ups []ScramUpsertion) []ScramResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	var order []string
	seen := map[string]bool{}
	type key struct{ user, mechanism string }
	count := map[key]int{}
	note := func(user, mechanism string) {
		if !seen[user] {
			seen[user] = true
			order = append(order, user)
		}
		count[key{user, mechanism}]++
	}
	for _, d := range dels {
		note(d.Name, d.Mechanism)
	}
	for _, u := range ups {
		note(u.Name, u.Mechanism)
	}
	errs := map[string]error{}
	if err := c.beginLocked(ctx); err != nil {
		for _, u := range order {
			errs[u] = err
		}
	}
	img := c.Image()
	var recs []metadata.Record
	fail := func(user string, err error) {
		if errs[user] == nil {
			errs[user] = err
		}
	}
	// check applies the checks common to deletions and upsertions.
	check := func(user, mechanism string) error {
		switch {
		case count[key{user, mechanism}] > 1:
			return kafkaErrorf(kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		case user == "":
			return kafkaErrorf(kerr.UnacceptableCredential, "Username must not be empty")
		case !auth.ScramMechanism(mechanism):
			return kafkaErrorf(kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		}
		return nil
	}
	for _, d := range dels {
		if err := check(d.Name, d.Mechanism); err != nil {
			fail(d.Name, err)
		} else if _, ok := img.ScramCredential(d.Name, d.Mechanism); !ok {
			fail(d.Name, kafkaErrorf(kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist"))
		}
	}
	for _, u := range ups {
		if err := check(u.Name, u.Mechanism); err != nil {
			fail(u.Name, err)
		} else if u.Iterations < ScramMinIterations {
			fail(u.Name, kafkaErrorf(kerr.UnacceptableCredential, "Too few iterations"))
		} else if u.Iterations > ScramMaxIterations {
			fail(u.Name, kafkaErrorf(kerr.UnacceptableCredential, "Too many iterations"))
		}
	}
	for _, d := range dels {
		if errs[d.Name] == nil {
			recs = append(recs, metadata.RemoveUserScramCredential{Name: d.Name, Mechanism: d.Mechanism})
		}
	}
	for _, u := range ups {
		if errs[u.Name] == nil {
			cred := auth.NewScramCredential(u.Mechanism, u.Salt, u.SaltedPassword, u.Iterations)
			recs = append(recs, metadata.UserScramCredential{Name: u.Name, Mechanism: u.Mechanism,
				Salt: cred.Salt, StoredKey: cred.StoredKey, ServerKey: cred.ServerKey, Iterations: cred.Iterations})
		}
	}
	if len(recs) > 0 {
		if _, err := c.proposeLocked(ctx, recs...); err != nil {
			err = fmt.Errorf("controller: alter SCRAM credentials: %w", err)
			for _, u := range order {
				fail(u, err)
			}
		} else {
			c.logger.Info("altered SCRAM credentials", "deletions", len(dels), "upsertions", len(ups))
		}
	}
	out := make([]ScramResult, len(order))
	for i, u := range order {
		out[i] = ScramResult{User: u, Err: errs[u]}
	}
	return out
}
