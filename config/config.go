// Package config holds the example configuration files (server.properties for a single node,
// cluster/node1..3.properties for a 3-node cluster on one machine) and embeds them, so that
// `samsa cluster start` works from an installed binary as well as from the repository.
package config

import "embed"

// Files holds server.properties and cluster/node{1,2,3}.properties.
//
//go:embed server.properties cluster/*.properties
var Files embed.FS

// ClusterNodes is the number of nodes of the example cluster.
const ClusterNodes = 3
