package cli

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestScramMechanisms(t *testing.T) {
	got, err := ScramMechanisms([]string{"scram-sha-512", "SHA-256", "SCRAM-SHA-512"})
	if err != nil || !reflect.DeepEqual(got, []kadm.ScramMechanism{kadm.ScramSha512, kadm.ScramSha256}) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := ScramMechanisms([]string{"PLAIN"}); err == nil {
		t.Fatal("PLAIN accepted")
	}
	rows := UserRows(kadm.DescribedUserSCRAMs{
		"bob":   {User: "bob", CredInfos: []kadm.CredInfo{{Mechanism: kadm.ScramSha512, Iterations: 4096}, {Mechanism: kadm.ScramSha256, Iterations: 8192}}},
		"alice": {User: "alice", CredInfos: []kadm.CredInfo{{Mechanism: kadm.ScramSha256, Iterations: 4096}}},
	})
	want := []UserRow{{"alice", "SCRAM-SHA-256", 4096}, {"bob", "SCRAM-SHA-256", 8192}, {"bob", "SCRAM-SHA-512", 4096}}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows %v", rows)
	}
}
