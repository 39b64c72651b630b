// Package metadata owns Samsa's cluster metadata: the records that make up the replicated
// metadata log (KRaft-style) and the immutable Image they build. It is pure: no I/O, no
// clocks, no randomness, so the same records always build the same image. The controller
// package replicates the records with Raft and publishes images; brokers read images.
//
// # Records
//
// A Record is one change to the cluster metadata. Record types and what they do:
//
//	Bootstrap            sets the cluster ID (once; re-applying the same ID is a no-op)
//	RegisterBroker       adds or replaces a broker registration (ID, endpoints, rack, incarnation,
//	                     "fenced", "inControlledShutdown"). The broker epoch is the log index of
//	                     the batch holding the record (ApplyBatch sets Broker.Epoch; an "epoch"
//	                     member in the record is ignored). A record without "fenced" (every
//	                     record written before fencing existed) registers an unfenced broker
//	CreateTopic          adds a topic with its ID, partitions (replicas, ISR, leader, epochs), configs
//	DeleteTopic          removes a topic, by ID
//	CreatePartitions     appends partitions to a topic, by topic ID
//	SetConfigs           sets and deletes config keys of a topic (ResourceTopic=2) or of a broker
//	                     (ResourceBroker=4; ResourceName "" is the cluster-wide broker default)
//	AllocateProducerIDs  hands out the producer-ID block [FirstID, FirstID+Count)
//	FeatureLevel         sets the finalized level of one feature (Kafka's FeatureLevelRecord,
//	                     KIP-584), e.g. {"type":"FeatureLevel","v":1,"name":"group.version","level":1};
//	                     level 0 removes the feature from the finalized features, as in Kafka.
//	                     A batch holding one sets the image's FeaturesIndex (the features' epoch)
//	                     to the batch's log index
//	BrokerRegistrationChange  {"id","epoch","fenced"?,"inControlledShutdown"?}: changes the
//	                     fencing or controlled-shutdown state of the registration with that epoch
//	                     (Kafka's BrokerRegistrationChangeRecord); absent members are unchanged
//	UnregisterBroker     {"id","epoch"}: removes the registration with that epoch
//	PartitionChange      {"topicID","partition","leader"?,"isr"?,"replicas"?}: Kafka's
//	                     PartitionChangeRecord. Absent members are unchanged; leader -1 means no
//	                     leader. The partition epoch grows by one on every change, the leader
//	                     epoch when the leader changes (Kafka 3.6+). The result must be
//	                     consistent (replicas without repeats, ISR a non-empty subset of them,
//	                     leader in the ISR or -1) or the batch fails. "reassignment"?:
//	                     {"adding"?,"removing"?} sets the replicas an ongoing reassignment adds
//	                     and removes (KIP-455; distinct replicas, not every replica removed),
//	                     {} ends it; the image keeps them in the partition (and so in
//	                     snapshots) as "addingReplicas" / "removingReplicas". Code that predates
//	                     the member ignores it and keeps replicas, ISR and leader right; it only
//	                     does not see the reassignment
//	RegisterController   {"id","directoryID"?,"endpoints"}: describes one controller of a dynamic
//	                     quorum (KIP-853): the directory id of its metadata log directory and
//	                     its controller-listener endpoints; replaces an earlier description, a
//	                     zero or absent directoryID keeps the one known. Raft's configuration,
//	                     not the image, says which controllers vote
//	UserScramCredential  {"name","mechanism","salt","storedKey","serverKey","iterations"}: sets one
//	                     user's credential for SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's
//	                     UserScramCredentialRecord; bytes in base64): the salt, the iterations
//	                     and RFC 5802's StoredKey and ServerKey, never the password
//	RemoveUserScramCredential {"name","mechanism"}: deletes one (the credential must exist)
//	AccessControlEntry   {"id","resourceType","resourceName","patternType","principal","host",
//	                     "operation","permission"}: adds one ACL binding (Kafka's
//	                     AccessControlEntryRecord; Kafka's codes, e.g. resourceType 2 TOPIC,
//	                     patternType 3 LITERAL, operation 3 READ, permission 3 ALLOW); the id is
//	                     new and the binding valid (acl.Binding.Validate)
//	RemoveAccessControlEntry {"id"}: removes the binding with that id (it must exist)
//	ClientQuota          {"entity":[{"entityType","entityName"}],"key","value"?,"remove"?}: sets
//	                     one client quota (Kafka's ClientQuotaRecord), e.g.
//	                     {"type":"ClientQuota","v":1,"entity":[{"entityType":"user","entityName":"alice"}],
//	                     "key":"producer_byte_rate","value":1048576}; entityType "user", "client-id"
//	                     or "ip", each at most once; a null entityName is the default entity of
//	                     its type; value > 0. With "remove":true it deletes the key (a missing one
//	                     is a no-op, as Kafka's replay). The image's quota.Table is replaced
//	                     (copy on write: the other entities' Values are shared), never edited
//
// # Record encoding (version 1)
//
// A record is one JSON object whose "type" member names the record type and whose "v" member is
// the version of that type's layout; the remaining members are the record's fields, named by
// their json tags below. Example:
//
//	{"type":"DeleteTopic","v":1,"id":"AAAAAAAAAAAAAAAAAAAAAQ"}
//
// UUIDs are written as Kafka writes them: 22 characters of URL-safe base64 without padding.
// Unknown members are ignored; a change that old code must not ignore gets a new version, and
// DecodeRecord rejects versions it does not know with ErrUnsupportedVersion.
//
// One Raft log entry holds one batch: a JSON array of records (EncodeBatch, DecodeBatch). A
// batch is applied atomically: either every record applies or the image is unchanged.
//
// # Image
//
// An Image is an immutable snapshot of the metadata at one log index. Apply and ApplyBatch
// return a new image and never modify the receiver (copy-on-write: maps and topics that did not
// change are shared with the old image), so readers may hold an image without locks. Callers
// must treat every map and slice reachable from an Image as read-only. Within one batch, the
// topics and maps a PartitionChange copied are changed in place by the batch's later records
// (they are not reachable from any published image yet), so a batch changing every partition
// of a topic costs time linear in the topic's size.
//
// # Snapshot encoding (version 1)
//
// EncodeImage writes an image as one JSON object:
//
//	{"v":1,"index":N,"clusterID":"...","brokers":[Broker...],"topics":[Topic...],
//	 "brokerConfigs":{"":{...},"1":{...}},"nextProducerID":N,
//	 "features":{"metadata.version":20,...},"featuresIndex":N,"controllers":[Controller...],
//	 "scramCredentials":{"alice":{"SCRAM-SHA-256":{"salt","storedKey","serverKey","iterations"}}},
//	 "acls":[{"id",binding...}...],
//	 "clientQuotas":[{"entity":[{"entityType","entityName"}...],"values":{"producer_byte_rate":1048576}}...]}
//
// with brokers and controllers sorted by ID, topics by name and client quotas by entity (user,
// client id, ip; the default before names), so equal images encode to equal bytes.
// DecodeImage rebuilds the by-name and by-ID indexes and checks them for consistency.
// "features" and "featuresIndex" are absent in snapshots written before feature levels existed
// (the image then has no finalized features until the controller writes its defaults; see
// package controller); a stored feature level is always at least 1.
package metadata
