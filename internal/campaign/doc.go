// Package campaign owns Samsa's fault campaign: three real `samsa server` processes (combined
// broker and controller nodes, voters of one quorum) on loopback behind fault-injecting TCP
// proxies, idempotent acks=all producers (franz-go, and librdkafka through confluent-kafka's
// Python client when its venv exists) and consumers recording everything they see, a nemesis
// (SIGKILL of a partition leader, SIGSTOP of a follower, SIGKILL of the active controller, a
// rolling SIGTERM restart, one node cut off the network by its proxies, SIGKILL of the
// transaction coordinator), and the checker that reads every partition back after healing and
// reports acknowledged records lost, duplicated, reordered or misplaced, reads of data later
// lost or overwritten, and leader failover times. Beside them an exactly-once chain runs: a
// transactional copier (franz-go's GroupTransactSession) copies the campaign topic to another
// with its group's offsets in each transaction, a read_committed consumer watches the copy,
// and CheckEOS (eos.go) finds input records copied zero or several times, copies of nothing,
// torn or aborted transactions visible, and reads of records the final copy lacks.
//
// The checker (check.go) and the proxies (proxy.go) are ordinary code with unit tests; the
// cluster, clients and nemesis are test code (TestCampaignShort; SAMSA_CAMPAIGN=long or a
// duration runs longer). DESIGN.md's "Fault campaign" section says how to run it.
package campaign
