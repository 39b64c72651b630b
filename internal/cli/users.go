package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ScramMechanisms parses --mechanism values (SCRAM-SHA-256, SCRAM-SHA-512, case-insensitive;
// the SHA-256/SHA-512 short forms too), without repeats, in the order given.
func ScramMechanisms(names []string) ([]kadm.ScramMechanism, error) {
	var out []kadm.ScramMechanism
	for _, n := range names {
		var m kadm.ScramMechanism
		switch strings.ToUpper(strings.TrimSpace(n)) {
		case "SCRAM-SHA-256", "SHA-256", "SHA256":
			m = kadm.ScramSha256
		case "SCRAM-SHA-512", "SHA-512", "SHA512":
			m = kadm.ScramSha512
		default:
			return nil, fmt.Errorf("unknown SCRAM mechanism %q (SCRAM-SHA-256 or SCRAM-SHA-512)", n)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// UserRow is one line of `samsa user list`.
type UserRow struct {
	User       string
	Mechanism  string
	Iterations int32
}

// UserRows flattens described SCRAM users into rows sorted by user, then mechanism.
func UserRows(described kadm.DescribedUserSCRAMs) []UserRow {
	var rows []UserRow
	for _, d := range described.Sorted() {
		for _, ci := range d.CredInfos {
			rows = append(rows, UserRow{User: d.User, Mechanism: ci.Mechanism.String(), Iterations: ci.Iterations})
		}
	}
	slices.SortStableFunc(rows, func(a, b UserRow) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return strings.Compare(a.Mechanism, b.Mechanism)
	})
	return rows
}
