// Package clustertest holds the end-to-end tests of multi-node clusters: in-process nodes
// (internal/testcluster) driven over TCP by franz-go and sarama.
package clustertest
