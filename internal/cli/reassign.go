package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// PlanPartition is one partition of a Kafka reassignment plan: its topic, partition and
// target replicas, and optionally one log directory per replica ("any" is the only one
// Samsa takes: moves between log directories, AlterReplicaLogDirs, are not served).
type PlanPartition struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []int32  `json:"replicas"`
	LogDirs   []string `json:"log_dirs,omitempty"`
}

// Name is the partition as Kafka's tools print it, topic-partition.
func (p PlanPartition) Name() string { return p.Topic + "-" + strconv.Itoa(int(p.Partition)) }

// Plan is a Kafka reassignment JSON file, what kafka-reassign-partitions takes with
// --reassignment-json-file and prints for --generate and as the rollback plan of --execute:
// {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","any"]}]}.
type Plan struct {
	Version    int             `json:"version"`
	Partitions []PlanPartition `json:"partitions"`
}

// anyLogDir is the log directory entry meaning "wherever the broker puts it".
const anyLogDir = "any"

// ParsePlan parses and checks a reassignment JSON file as kafka-reassign-partitions does:
// version 1, at least one partition, each with a topic, a partition number, a non-empty
// list of distinct broker ids and, if log_dirs is given, one entry per replica, each "any";
// no partition twice.
func ParsePlan(data []byte) (Plan, error) {
	var plan Plan
	if err := json.Unmarshal(data, &plan); err != nil {
		return Plan{}, fmt.Errorf("the reassignment JSON is not valid: %w", err)
	}
	if plan.Version != 1 {
		return Plan{}, fmt.Errorf("the reassignment JSON has version %d, only version 1 is supported", plan.Version)
	}
	if len(plan.Partitions) == 0 {
		return Plan{}, fmt.Errorf("partition reassignment list cannot be empty")
	}
	seen := map[string]bool{}
	for _, p := range plan.Partitions {
		if p.Topic == "" {
			return Plan{}, fmt.Errorf("a partition of the reassignment JSON has no topic")
		}
		if p.Partition < 0 {
			return Plan{}, fmt.Errorf("partition %s: the partition number cannot be negative", p.Name())
		}
		if seen[p.Name()] {
			return Plan{}, fmt.Errorf("partition %s appears more than once in the reassignment JSON", p.Name())
		}
		seen[p.Name()] = true
		if err := checkReplicas(p.Replicas); err != nil {
			return Plan{}, fmt.Errorf("partition %s: %w", p.Name(), err)
		}
		if p.LogDirs != nil {
			if len(p.LogDirs) != len(p.Replicas) {
				return Plan{}, fmt.Errorf("partition %s: the log_dirs list has %d entries for %d replicas", p.Name(), len(p.LogDirs), len(p.Replicas))
			}
			for _, d := range p.LogDirs {
				if d != anyLogDir {
					return Plan{}, fmt.Errorf("partition %s: log directory %q: only \"any\" is supported (moving replicas between log directories, AlterReplicaLogDirs, is not served)", p.Name(), d)
				}
			}
		}
	}
	return plan, nil
}

// checkReplicas refuses an empty replica list, a negative broker id and a broker twice.
func checkReplicas(replicas []int32) error {
	if len(replicas) == 0 {
		return fmt.Errorf("the replica list cannot be empty")
	}
	for i, r := range replicas {
		if r < 0 {
			return fmt.Errorf("invalid broker id %d in the replica list", r)
		}
		if slices.Contains(replicas[:i], r) {
			return fmt.Errorf("broker %d appears more than once in the replica list %s", r, joinIDs(replicas))
		}
	}
	return nil
}

// ParseBrokerIDs parses a comma-separated list of distinct broker ids ("1,2,3"), as
// --replicas and --broker-list take them.
func ParseBrokerIDs(s string) ([]int32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("the broker list is empty")
	}
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a broker id", f)
		}
		ids = append(ids, int32(id))
	}
	if err := checkReplicas(ids); err != nil {
		return nil, err
	}
	return ids, nil
}

// ParseTopicsToMove parses kafka-reassign-partitions' --topics-to-move-json-file,
// {"version":1,"topics":[{"topic":"a"},{"topic":"b"}]}, into its topic names.
func ParseTopicsToMove(data []byte) ([]string, error) {
	var doc struct {
		Version int `json:"version"`
		Topics  []struct {
			Topic string `json:"topic"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("the topics-to-move JSON is not valid: %w", err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("the topics-to-move JSON has version %d, only version 1 is supported", doc.Version)
	}
	var topics []string
	for _, t := range doc.Topics {
		if t.Topic == "" {
			return nil, fmt.Errorf("a topic of the topics-to-move JSON has no name")
		}
		if !slices.Contains(topics, t.Topic) {
			topics = append(topics, t.Topic)
		}
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("the topics-to-move JSON lists no topic")
	}
	return topics, nil
}

// Sorted returns the plan with its partitions sorted by topic and partition.
func (p Plan) Sorted() Plan {
	out := Plan{Version: 1, Partitions: slices.Clone(p.Partitions)}
	slices.SortFunc(out.Partitions, func(a, b PlanPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	return out
}

// JSON renders the plan on one line, sorted, with "any" log directories, as Kafka's tool
// prints it (and reads it back).
func (p Plan) JSON() string {
	out := p.Sorted()
	for i := range out.Partitions {
		part := &out.Partitions[i]
		part.LogDirs = make([]string, len(part.Replicas))
		for j := range part.LogDirs {
			part.LogDirs[j] = anyLogDir
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out) // a Plan always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}

// Names returns the plan's partitions as topic-partition, comma-separated, sorted.
func (p Plan) Names() string {
	var names []string
	for _, part := range p.Sorted().Partitions {
		names = append(names, part.Name())
	}
	return strings.Join(names, ",")
}

// Topics returns the plan's topics, sorted, each once.
func (p Plan) Topics() []string {
	var topics []string
	for _, part := range p.Partitions {
		topics = append(topics, part.Topic)
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// CurrentPlan is the current assignment of the plan's partitions (from describing their
// topics), the rollback plan kafka-reassign-partitions --execute prints first. A partition
// the topics do not have is an error (UNKNOWN_TOPIC_OR_PARTITION).
func CurrentPlan(plan Plan, topics kadm.TopicDetails) (Plan, error) {
	cur := Plan{Version: 1}
	for _, part := range plan.Sorted().Partitions {
		td, ok := topics[part.Topic]
		if !ok || td.Err != nil {
			err := fmt.Errorf("topic %s does not exist", part.Topic)
			if ok {
				err = ResponseError("describe topic", part.Topic, td.Err, "")
			}
			return Plan{}, err
		}
		pd, ok := td.Partitions[part.Partition]
		if !ok {
			return Plan{}, fmt.Errorf("partition %s does not exist (topic %s has %d partitions)", part.Name(), part.Topic, len(td.Partitions))
		}
		cur.Partitions = append(cur.Partitions, PlanPartition{Topic: part.Topic, Partition: part.Partition, Replicas: slices.Clone(pd.Replicas)})
	}
	return cur, nil
}

// ProposeAssignment proposes moving every partition of topics onto brokers, keeping each
// partition's replication factor, like kafka-reassign-partitions --generate: replicas are
// dealt round-robin, partition k of the whole list (topics sorted, partitions in order)
// starting on brokers[k mod n] and taking the next brokers in turn, so leaders and
// replicas spread evenly. Current holds each topic's partitions with their replicas (the
// returned current plan, to roll back with). A replication factor larger than the broker
// list is refused with Kafka's INVALID_REPLICATION_FACTOR text.
func ProposeAssignment(topics kadm.TopicDetails, names []string, brokers []int32) (current, proposed Plan, err error) {
	if err := checkReplicas(brokers); err != nil {
		return Plan{}, Plan{}, fmt.Errorf("--broker-list: %w", err)
	}
	current, proposed = Plan{Version: 1}, Plan{Version: 1}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	k := 0
	for _, name := range slices.Compact(sorted) {
		td, ok := topics[name]
		if !ok || td.Err != nil {
			if ok {
				return Plan{}, Plan{}, ResponseError("describe topic", name, td.Err, "")
			}
			return Plan{}, Plan{}, fmt.Errorf("topic %s does not exist", name)
		}
		for _, pd := range td.Partitions.Sorted() {
			rf := len(pd.Replicas)
			if rf > len(brokers) {
				return Plan{}, Plan{}, fmt.Errorf("topic %s: INVALID_REPLICATION_FACTOR: Replication factor: %d larger than available brokers: %d.", name, rf, len(brokers))
			}
			replicas := make([]int32, rf)
			for j := range replicas {
				replicas[j] = brokers[(k+j)%len(brokers)]
			}
			k++
			current.Partitions = append(current.Partitions, PlanPartition{Topic: name, Partition: pd.Partition, Replicas: slices.Clone(pd.Replicas)})
			proposed.Partitions = append(proposed.Partitions, PlanPartition{Topic: name, Partition: pd.Partition, Replicas: replicas})
		}
	}
	return current, proposed, nil
}

// ReassignState is where one partition of a plan stands, as kafka-reassign-partitions
// --verify reports it.
type ReassignState int

const (
	// ReassignCompleted: no reassignment in progress and the replicas are the plan's.
	ReassignCompleted ReassignState = iota
	// ReassignInProgress: the partition is being reassigned.
	ReassignInProgress
	// ReassignNotStarted: no reassignment in progress, and the replicas are not the plan's.
	ReassignNotStarted
)

// PartitionProgress is one plan partition's state, with its current replicas.
type PartitionProgress struct {
	PlanPartition
	State   ReassignState
	Current []int32
}

// Progress compares the plan with the topics' current replicas and the reassignments in
// progress (ListPartitionReassignments). A partition the topics lack counts as not started.
func Progress(plan Plan, topics kadm.TopicDetails, listed kadm.ListPartitionReassignmentsResponses) []PartitionProgress {
	var out []PartitionProgress
	for _, part := range plan.Sorted().Partitions {
		pp := PartitionProgress{PlanPartition: part, State: ReassignNotStarted}
		if pd, ok := topics[part.Topic].Partitions[part.Partition]; ok {
			pp.Current = pd.Replicas
		}
		if r, ok := listed[part.Topic][part.Partition]; ok {
			pp.State, pp.Current = ReassignInProgress, r.Replicas
		} else if pp.Current != nil && slices.Equal(pp.Current, part.Replicas) {
			pp.State = ReassignCompleted
		}
		out = append(out, pp)
	}
	return out
}

// WriteProgress writes, after Kafka's "Status of partition reassignment:" header, one line
// per partition in Kafka's --verify words, and returns how many are in progress and how many
// are neither in progress nor completed.
func WriteProgress(w io.Writer, progress []PartitionProgress) (inProgress, notStarted int, err error) {
	if _, err := fmt.Fprintln(w, "Status of partition reassignment:"); err != nil {
		return 0, 0, fmt.Errorf("write verification: %w", err)
	}
	for _, p := range progress {
		var line string
		switch p.State {
		case ReassignCompleted:
			line = fmt.Sprintf("Reassignment of partition %s is completed.", p.Name())
		case ReassignInProgress:
			inProgress++
			line = fmt.Sprintf("Reassignment of partition %s is still in progress (replicas %s).", p.Name(), joinIDs(p.Current))
		default:
			notStarted++
			cur := "none"
			if p.Current != nil {
				cur = joinIDs(p.Current)
			}
			line = fmt.Sprintf("There is no active reassignment of partition %s, but replica set is %s rather than %s.", p.Name(), cur, joinIDs(p.Replicas))
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return 0, 0, fmt.Errorf("write verification: %w", err)
		}
	}
	return inProgress, notStarted, nil
}

// WriteReassignments writes the reassignments in progress as a table: topic, partition,
// replicas, adding and removing replicas ("-" for none), or a line saying there are none.
func WriteReassignments(w io.Writer, listed kadm.ListPartitionReassignmentsResponses) error {
	sorted := listed.Sorted()
	if len(sorted) == 0 {
		_, err := fmt.Fprintln(w, "No partition reassignment in progress.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tREPLICAS\tADDING\tREMOVING")
	for _, r := range sorted {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Topic, r.Partition, joinIDs(r.Replicas), joinIDs(r.AddingReplicas), joinIDs(r.RemovingReplicas))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write reassignments: %w", err)
	}
	return nil
}

// ReassignmentsFrom turns a ListPartitionReassignments answer into kadm's form (for a
// request listing every partition, which kadm does not send: it takes an empty set as
// nothing to list).
func ReassignmentsFrom(resp *kmsg.ListPartitionReassignmentsResponse) (kadm.ListPartitionReassignmentsResponses, error) {
	if err := errorOf(resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	out := kadm.ListPartitionReassignmentsResponses{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if out[t.Topic] == nil {
				out[t.Topic] = map[int32]kadm.ListPartitionReassignmentsResponse{}
			}
			out[t.Topic][p.Partition] = kadm.ListPartitionReassignmentsResponse{Topic: t.Topic, Partition: p.Partition,
				Replicas: p.Replicas, AddingReplicas: p.AddingReplicas, RemovingReplicas: p.RemovingReplicas}
		}
	}
	return out, nil
}
