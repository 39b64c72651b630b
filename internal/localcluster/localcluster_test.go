package localcluster

import (
	"fmt"
	"strings"
	"testing"

	exampleconfig "github.com/samsa-io/samsa/config"
	"github.com/samsa-io/samsa/internal/config"
)

// TestNodeSettingsMetricsAddress: the built-in node files give each node its own metrics port;
// --ports (another cluster on this machine) leaves the endpoint off unless an override sets it.
func TestNodeSettingsMetricsAddress(t *testing.T) {
	var nodes []map[string]string
	for i := 1; i <= exampleconfig.ClusterNodes; i++ {
		f, err := exampleconfig.Files.Open(fmt.Sprintf("cluster/node%d.properties", i))
		if err != nil {
			t.Fatal(err)
		}
		props, err := config.ParseProperties(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, props)
	}
	for _, tc := range []struct {
		name      string
		ports     []int
		overrides []string
		want      []string
	}{
		{"files", nil, nil, []string{"127.0.0.1:19094", "127.0.0.1:29094", "127.0.0.1:39094"}},
		{"--ports", []int{1, 2, 3, 4, 5, 6}, nil, []string{"", "", ""}},
		{"--ports --override", []int{1, 2, 3, 4, 5, 6}, []string{"samsa.metrics.address=127.0.0.1:0"}, []string{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Spec{Dir: t.TempDir(), Nodes: nodes, Ports: tc.ports, Overrides: tc.overrides}.nodeSettings()
			if err != nil {
				t.Fatal(err)
			}
			var addrs []string
			for _, q := range got {
				cfg, err := config.LoadServer(q)
				if err != nil {
					t.Fatal(err)
				}
				addrs = append(addrs, nodeOf(t.TempDir(), cfg).Metrics) // as `cluster start` prints it
			}
			if strings.Join(addrs, ",") != strings.Join(tc.want, ",") {
				t.Errorf("samsa.metrics.address of the nodes: %q, want %q", addrs, tc.want)
			}
		})
	}
}
