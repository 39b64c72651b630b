package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	exampleconfig "github.com/samsa-io/samsa/config"
	"github.com/samsa-io/samsa/internal/cli"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/localcluster"
)

func init() {
	rootCmd.AddCommand(newClusterCmd())
}

// defaultClusterDir is where `samsa cluster start` keeps a local cluster's settings, data,
// logs and pid files unless --dir says otherwise.
const defaultClusterDir = "cluster-data"

// newClusterCmd builds `samsa cluster`: describe (any cluster, through a broker) and
// start/stop/status (a local cluster of background processes).
func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Describe a cluster, or start/stop/status a 3-node cluster on this machine",
	}
	cmd.AddCommand(newClusterDescribeCmd(), newClusterStartCmd(), newClusterStopCmd(), newClusterStatusCmd())
	return cmd
}

func newClusterDescribeCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "describe",
		Short: "Show the cluster id, brokers (address, rack), active controller and metadata quorum",
		Long: `Show the cluster id, the brokers with their address and rack, the active controller and
the metadata quorum: its leader, epoch and high watermark, and per voter and observer its log
end offset, lag and last caught-up time (Metadata and DescribeQuorum; like
kafka-metadata-quorum describe --status and --replication).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withClient(cmd, func(ctx context.Context, cl *kgo.Client) error {
				meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
				if err != nil {
					return cli.ResponseError("describe", "cluster", err, "")
				}
				q, err := describeQuorum(ctx, cl)
				if err != nil {
					return err
				}
				return cli.WriteClusterDescription(cmd.OutOrStdout(), meta, q, time.Now())
			})
		},
	}
	cf.register(cmd.Flags())
	return cmd
}

// describeQuorum sends DescribeQuorum for the metadata log (a broker asks the active
// controller).
func describeQuorum(ctx context.Context, cl *kgo.Client) (cli.Quorum, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return cli.Quorum{}, cli.ResponseError("describe", "metadata quorum", err, "")
	}
	q, err := cli.QuorumFrom(resp)
	if err != nil {
		return cli.Quorum{}, cli.ResponseError("describe", "metadata quorum", err, "")
	}
	return q, nil
}

// clusterDirFlag registers --dir.
func clusterDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "dir", defaultClusterDir, "the cluster directory: settings, data, logs and pid files of every node")
}

func newClusterStartCmd() *cobra.Command {
	var (
		dir, configDir string
		ports          string
		overrides      []string
		node           int32
		timeout        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start a 3-node cluster on this machine in the background",
		Long: `Start three combined nodes (broker and controller) as background samsa server processes,
from config/cluster/node1..3.properties (built into the binary; --config-dir reads them from a
directory instead): clients on 127.0.0.1:19092, 29092, 39092, controllers on 19093, 29093, 39093,
racks r1, r2, r3, replication factor 3, min.insync.replicas 2.

On the first start it formats each node's storage with one new cluster id (samsa storage format).
Each node's data, settings and log go to <dir>/nodeN/ (data/, server.properties, server.log).
It returns once every node serves clients and sees all three brokers, and prints the bootstrap
servers. Nodes already running are left as they are, so after samsa cluster stop --node 2 a
plain start brings node 2 back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nodes, err := clusterNodeSettings(configDir)
			if err != nil {
				return err
			}
			spec := localcluster.Spec{Dir: dir, Nodes: nodes, Overrides: overrides, Only: node, Timeout: timeout, Out: cmd.OutOrStdout()}
			if spec.Ports, err = parsePorts(ports); err != nil {
				return err
			}
			if spec.Binary, err = os.Executable(); err != nil {
				return fmt.Errorf("finding the samsa binary: %w", err)
			}
			ctx, stop := commandContext(cmd)
			defer stop()
			started, err := localcluster.Start(ctx, spec)
			if err != nil {
				return err
			}
			abs, _ := filepath.Abs(dir)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "cluster directory: %s\n", abs)
			fmt.Fprintf(out, "bootstrap servers: %s\n", localcluster.Bootstrap(started))
			fmt.Fprintf(out, "controllers: %s\n", controllerAddrs(started))
			fmt.Fprintf(out, "try: export SAMSA_BROKERS=%s; samsa cluster describe\n", localcluster.Bootstrap(started))
			return nil
		},
	}
	clusterDirFlag(cmd, &dir)
	cmd.Flags().StringVar(&configDir, "config-dir", "", "read node1..3.properties from this directory instead of the built-in config/cluster")
	cmd.Flags().StringVar(&ports, "ports", "", "6 ports replacing the files': client,controller of node 1, then node 2, node 3")
	cmd.Flags().StringArrayVar(&overrides, "override", nil, "a setting for every node as key=value (repeatable)")
	cmd.Flags().Int32Var(&node, "node", 0, "start only this node id")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the nodes to serve")
	return cmd
}

func newClusterStopCmd() *cobra.Command {
	var (
		dir     string
		node    int32
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the local cluster's nodes (SIGTERM, one at a time, waiting for each)",
		Long: `Send SIGTERM to each running node of the cluster in --dir, the highest id first, and wait
until it has exited (a controlled shutdown: its partition leaderships move to the others).
--node stops one node only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return localcluster.Stop(dir, node, timeout, cmd.OutOrStdout())
		},
	}
	clusterDirFlag(cmd, &dir)
	cmd.Flags().Int32Var(&node, "node", 0, "stop only this node id")
	cmd.Flags().DurationVar(&timeout, "timeout", 90*time.Second, "how long to wait for each node to exit")
	return cmd
}

func newClusterStatusCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show which nodes of the local cluster run (pid, addresses, log file)",
		Long: `Show each node of the cluster in --dir: whether its process runs, its pid, its client and
controller addresses and its log file, then the bootstrap servers of the running nodes. Exits
with an error unless every node runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := localcluster.Statuses(dir)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tSTATE\tPID\tCLIENTS\tCONTROLLER\tLOG")
			var running []localcluster.Node
			for _, s := range st {
				state, pid := "stopped", "-"
				if s.Running {
					state, pid = "running", strconv.Itoa(s.Pid)
					running = append(running, s.Node)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, state, pid, s.Client, s.Controller, s.LogFile())
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(running) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "bootstrap servers: %s\n", localcluster.Bootstrap(running))
			}
			if len(running) < len(st) {
				return fmt.Errorf("%d of %d nodes running", len(running), len(st))
			}
			return nil
		},
	}
	clusterDirFlag(cmd, &dir)
	return cmd
}

// clusterNodeSettings reads node1..3.properties from dir, or the built-in copies of
// config/cluster when dir is "".
func clusterNodeSettings(dir string) ([]map[string]string, error) {
	fsys, sub := fs.FS(exampleconfig.Files), "cluster"
	if dir != "" {
		fsys, sub = os.DirFS(dir), "."
	}
	var out []map[string]string
	for i := 1; i <= exampleconfig.ClusterNodes; i++ {
		name := fmt.Sprintf("node%d.properties", i)
		f, err := fsys.Open(filepath.Join(sub, name))
		if err != nil {
			return nil, fmt.Errorf("--config-dir: %w", err)
		}
		props, err := config.ParseProperties(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, props)
	}
	return out, nil
}

// parsePorts parses --ports: comma-separated port numbers.
func parsePorts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("--ports: %q is not a port", f)
		}
		out = append(out, p)
	}
	return out, nil
}

// controllerAddrs returns the nodes' controller addresses, comma-separated.
func controllerAddrs(nodes []localcluster.Node) string {
	var out []string
	for _, n := range nodes {
		if n.Controller != "" {
			out = append(out, n.Controller)
		}
	}
	return strings.Join(out, ",")
}
