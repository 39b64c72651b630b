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
		configPath      string
		overrides       []string
		clusterID       string
		ignoreFormatted bool
	)
	format := &cobra.Command{
		Use:   "format",
		Short: "Format the log and metadata directories for a cluster id",
		Long: `Write meta.properties (node.id, cluster.id, directory.id) into every log directory and
the metadata directory of the node the configuration describes. Every node of a cluster is
formatted with the same cluster id before its first start; a single node with no
controller.quorum.voters formats itself.

  samsa storage format --cluster-id "$(samsa storage random-uuid)" --config node1.properties`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if clusterID == "" {
				return fmt.Errorf("--cluster-id is required (samsa storage random-uuid makes one)")
			}
			cfg, err := loadServerConfig(configPath, overrides)
			if err != nil {
				return err
			}
			dirs, err := server.Format(cfg, clusterID, ignoreFormatted)
			if err != nil {
				return err
			}
			for _, d := range dirs {
				fmt.Fprintf(cmd.OutOrStdout(), "Formatting %s with cluster.id %s and node.id %d\n", d, clusterID, cfg.NodeID)
			}
			if len(dirs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "All of the log directories are already formatted.")
			}
			return nil
		},
	}
	format.Flags().StringVarP(&configPath, "config", "c", "", "the node's properties file")
	format.Flags().StringArrayVar(&overrides, "override", nil, "a setting as key=value (repeatable)")
	format.Flags().StringVarP(&clusterID, "cluster-id", "t", "", "the cluster id (samsa storage random-uuid)")
	format.Flags().BoolVarP(&ignoreFormatted, "ignore-formatted", "g", false, "leave directories that are already formatted as they are")
	storage.AddCommand(format)
	rootCmd.AddCommand(storage)
}
