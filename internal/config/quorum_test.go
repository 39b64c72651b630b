package config

import (
	"slices"
	"strings"
	"testing"
)

// TestQuorumSettings checks process.roles, controller.quorum.voters and
// controller.quorum.bootstrap.servers, as Kafka's KafkaConfig checks them together.
func TestQuorumSettings(t *testing.T) {
	const voters = "1@localhost:9093,2@localhost:9193,3@localhost:9293"
	for _, tc := range []struct {
		name    string
		props   map[string]string
		wantErr string
		want    []Voter
	}{
		{"single node", nil, "", nil},
		{"combined voter", map[string]string{"controller.quorum.voters": voters}, "",
			[]Voter{{1, "localhost", 9093}, {2, "localhost", 9193}, {3, "localhost", 9293}}},
		{"controller only", map[string]string{"process.roles": "controller", "listeners": "CONTROLLER://:9093", "controller.quorum.voters": voters}, "",
			[]Voter{{1, "localhost", 9093}, {2, "localhost", 9193}, {3, "localhost", 9293}}},
		{"controller only alone", map[string]string{"process.roles": "controller", "listeners": "CONTROLLER://:9093"}, "required when process.roles", nil},
		{"broker only not a voter", map[string]string{"process.roles": "broker", "node.id": "4", "listeners": "PLAINTEXT://:9092", "controller.quorum.voters": voters}, "",
			[]Voter{{1, "localhost", 9093}, {2, "localhost", 9193}, {3, "localhost", 9293}}},
		{"broker only but a voter", map[string]string{"process.roles": "broker", "listeners": "PLAINTEXT://:9092", "controller.quorum.voters": voters}, "no controller role", nil},
		{"broker only with a controller listener", map[string]string{"process.roles": "broker", "node.id": "4", "controller.quorum.voters": voters}, "no controller role", nil},
		{"controller not among voters", map[string]string{"node.id": "7", "controller.quorum.voters": voters}, "not one of the voters", nil},
		{"bad voter", map[string]string{"controller.quorum.voters": "1:localhost:9093"}, "id@host:port", nil},
		{"voter without port", map[string]string{"controller.quorum.voters": "1@localhost"}, "controller.quorum.voters", nil},
		{"duplicate voter", map[string]string{"controller.quorum.voters": "1@a:1,1@b:2"}, "twice", nil},
		{"no roles", map[string]string{"process.roles": ""}, "process.roles", nil},
		{"bootstrap servers naming this node", map[string]string{"controller.quorum.bootstrap.servers": "localhost:9093"}, "", nil},
		{"bootstrap servers naming others", map[string]string{"controller.quorum.bootstrap.servers": "otherhost:9093,localhost:9093"}, "", nil},
		{"controller only with bootstrap servers", map[string]string{"process.roles": "controller", "listeners": "CONTROLLER://:9093", "controller.quorum.bootstrap.servers": "otherhost:9093"}, "", nil},
		{"broker only with bootstrap servers", map[string]string{"process.roles": "broker", "listeners": "PLAINTEXT://:9092", "controller.quorum.bootstrap.servers": "otherhost:9093"}, "", nil},
		{"bad bootstrap server", map[string]string{"controller.quorum.bootstrap.servers": "otherhost"}, "not host:port", nil},
		{"bootstrap servers and voters", map[string]string{"controller.quorum.bootstrap.servers": "localhost:9093", "controller.quorum.voters": voters}, "both set", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadServer(tc.props)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want mention of %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Voters, tc.want) {
				t.Errorf("voters %v, want %v", s.Voters, tc.want)
			}
			bs := tc.props["controller.quorum.bootstrap.servers"]
			if s.SingleNode() != (len(tc.want) == 0 && (bs == "" || bs == "localhost:9093")) {
				t.Errorf("SingleNode %v", s.SingleNode())
			}
			if s.DynamicQuorum() != (bs != "") {
				t.Errorf("DynamicQuorum %v", s.DynamicQuorum())
			}
		})
	}
}
