package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/samsa-io/samsa/internal/server"
)

// The storage commands prepare a node's data directories, like Kafka's kafka-storage.sh.
func init() {
	storage := &cobra.Command{
		Use:   "storage",
		Short: "Format a node's data directories (like kafka-storage.sh)",
	}
	storage.AddCommand(&cobra.Command{
		Use:   "random-uuid",
		Short: "Print a new random cluster id",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), server.RandomUUID())
		},
	})
	var (
		configPath string
		overrides  []string
		opts       server.FormatOptions
	)
	format := &cobra.Command{
		Use:   "format",
		Short: "Format the log and metadata directories for a cluster id",
		Long: `Write meta.properties (node.id, cluster.id, directory.id) into every log directory and
the metadata directory of the node the configuration describes. Every node of a cluster is
formatted with the same cluster id before its first start; a single node with no
controller.quorum.voters formats itself.

A controller of a dynamic quorum (controller.quorum.bootstrap.servers instead of
controller.quorum.voters, KIP-853) is formatted with one of:
  --standalone             it is the quorum's only initial voter
  --initial-controllers    the initial voters, id@host:port:directory-id,... (the same list on
                           every initial voter; samsa storage random-uuid makes directory ids)
  --no-initial-controllers it joins later as an observer, and kafka-metadata-quorum
                           add-controller makes it a voter

  samsa storage format --cluster-id "$(samsa storage random-uuid)" --config node1.properties
  samsa storage format --cluster-id "$ID" --config controller1.properties --standalone
  samsa storage format --cluster-id "$ID" --config controller2.properties --no-initial-controllers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.ClusterID == "" {
				return fmt.Errorf("--cluster-id is required (samsa storage random-uuid makes one)")
			}
			cfg, err := loadServerConfig(configPath, overrides)
			if err != nil {
				return err
			}
			dirs, err := server.FormatWith(cfg, opts)
			if err != nil {
				return err
			}
			for _, d := range dirs {
				fmt.Fprintf(cmd.OutOrStdout(), "Formatting %s %s with cluster.id %s, node.id %d and directory.id %s\n",
					d.Kind, d.Dir, opts.ClusterID, cfg.NodeID, d.DirectoryID)
			}
			if len(dirs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "All of the log directories are already formatted.")
			}
			return nil
		},
	}
	format.Flags().StringVarP(&configPath, "config", "c", "", "the node's properties file")
	format.Flags().StringArrayVar(&overrides, "override", nil, "a setting as key=value (repeatable)")
	format.Flags().StringVarP(&opts.ClusterID, "cluster-id", "t", "", "the cluster id (samsa storage random-uuid)")
	format.Flags().BoolVarP(&opts.IgnoreFormatted, "ignore-formatted", "g", false, "leave directories that are already formatted as they are")
	format.Flags().BoolVarP(&opts.Standalone, "standalone", "s", false, "dynamic quorum: this controller is the only initial voter")
	format.Flags().StringVarP(&opts.InitialControllers, "initial-controllers", "I", "",
		"dynamic quorum: the initial voters, id@host:port:directory-id,...")
	format.Flags().BoolVarP(&opts.NoInitialControllers, "no-initial-controllers", "N", false,
		"dynamic quorum: no initial voters here; the node joins later as an observer")
	format.Flags().StringArrayVarP(&opts.AddScram, "add-scram", "S", nil,
		"a SCRAM credential to bootstrap, as kafka-storage takes it: 'SCRAM-SHA-256=[name=alice,password=alice-secret]' (also iterations=, salt=, saltedpassword=; repeatable)")
	format.MarkFlagsMutuallyExclusive("standalone", "initial-controllers", "no-initial-controllers")
	storage.AddCommand(format)
	rootCmd.AddCommand(storage)
}
