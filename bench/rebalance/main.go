// Command rebalance measures how long a consumer group takes to absorb a new member: a 4th
// member joins a stable, consuming 3-member group, and the time from its kgo.NewClient until all
// 4 members consume their new assignment is measured for the classic protocol with an eager
// assignor, the classic protocol with the cooperative-sticky assignor, KIP-848 (server-side
// assignment), and a KIP-848 member joining a classic cooperative group (the online upgrade to a
// mixed group). See README.md.
//
//	go run ./bench/rebalance [--rounds 5] [--fast] [--json] [--brokers host:port]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// initialRebalanceDelay is group.initial.rebalance.delay.ms, Kafka's default.
const initialRebalanceDelay = 3000

type report struct {
	Broker                       string          `json:"broker"`
	Mode                         string          `json:"mode"` // "default" or "fast"
	Partitions                   int             `json:"partitions"`
	ExistingMembers              int             `json:"existing_members"`
	Rounds                       int             `json:"rounds"`
	TrickleMs                    float64         `json:"trickle_interval_ms"`
	ClassicHeartbeatMs           float64         `json:"classic_heartbeat_ms"`
	KIP848HeartbeatMs            float64         `json:"kip848_heartbeat_ms,omitempty"`
	GroupInitialRebalanceDelayMs *int            `json:"group_initial_rebalance_delay_ms,omitempty"`
	BrokerSettings               []string        `json:"broker_settings,omitempty"`
	Protocols                    []protocolStats `json:"protocols"`
	Notes                        []string        `json:"notes"`
	Started                      time.Time       `json:"started"`
	ElapsedS                     float64         `json:"elapsed_s"`
	RecordsProduced              int64           `json:"records_produced"`
	ProduceErrors                int64           `json:"produce_errors"`
	ProduceDropped               int64           `json:"produce_dropped"`
}

type protocolStats struct {
	protocol
	HeartbeatMs                float64       `json:"heartbeat_ms"`
	OK                         int           `json:"rounds_ok"`
	Failed                     int           `json:"rounds_failed"`
	Skipped                    string        `json:"skipped,omitempty"`
	JoinToAllConsumingMs       summary       `json:"join_to_all_consuming_ms"`
	NewMemberConsumingMedianMs float64       `json:"new_member_consuming_median_ms"`
	FirstChangeMedianMs        float64       `json:"first_change_median_ms"`
	StopTheWorldMedianMs       float64       `json:"stop_the_world_median_ms"`
	MaxPartitionGapMedianMs    float64       `json:"max_partition_gap_median_ms"`
	Results                    []roundResult `json:"rounds"`
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		brokersFlag  = flag.String("brokers", "", "measure this running broker (host:port,...) instead of starting a fresh in-process Samsa node")
		rounds       = flag.Int("rounds", 5, "joins measured per protocol")
		fast         = flag.Bool("fast", false, "lower heartbeat intervals: classic kgo.HeartbeatInterval(500ms); KIP-848 group.consumer.heartbeat.interval.ms=500 on the in-process node")
		jsonOut      = flag.Bool("json", false, "print the report as JSON instead of a table")
		protoFlag    = flag.String("protocols", "classic-eager,classic-cooperative,kip848,upgrade", "protocols to measure (upgrade: a KIP-848 member joins a classic cooperative group)")
		partitions   = flag.Int("partitions", 12, "partitions of the topic")
		existing     = flag.Int("members", 3, "members of the group before the join")
		trickleEvery = flag.Duration("trickle", 50*time.Millisecond, "interval between records on each partition")
		phaseTimeout = flag.Duration("phase-timeout", 2*time.Minute, "limit of each phase of a round (forming the group, absorbing the join)")
		timeout      = flag.Duration("timeout", 45*time.Minute, "limit of the whole run")
		verbose      = flag.Bool("v", false, "print every assignment change after each join")
		brokerLog    = flag.Bool("broker-log", false, "log the in-process node to stderr")
	)
	flag.Parse()
	if *rounds < 1 || *partitions < 1 || *existing < 1 || *trickleEvery <= 0 {
		fmt.Fprintln(os.Stderr, "rebalance: --rounds, --partitions, --members and --trickle must be positive")
		return 2
	}
	var selected []protocol
	for _, name := range strings.Split(*protoFlag, ",") {
		i := slices.IndexFunc(protocols, func(p protocol) bool { return p.Name == strings.TrimSpace(name) })
		if i < 0 {
			fmt.Fprintf(os.Stderr, "rebalance: unknown protocol %q (known: classic-eager, classic-cooperative, kip848, upgrade)\n", name)
			return 2
		}
		selected = append(selected, protocols[i])
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := &report{
		Mode: "default", Partitions: *partitions, ExistingMembers: *existing, Rounds: *rounds,
		TrickleMs: ms(*trickleEvery), Started: time.Now(),
	}
	if *fast {
		rep.Mode = "fast"
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "rebalance: "+format+"\n", args...) }

	var brokers []string
	if *brokersFlag != "" {
		brokers = strings.Split(*brokersFlag, ",")
		rep.Broker = "external " + *brokersFlag
		rep.Notes = append(rep.Notes, "external broker: its group.initial.rebalance.delay.ms and group.consumer.* settings are its own")
	} else {
		settings := map[string]string{
			"group.initial.rebalance.delay.ms": strconv.Itoa(initialRebalanceDelay),
		}
		if *fast {
			settings["group.consumer.heartbeat.interval.ms"] = strconv.Itoa(int(fastHeartbeat.Milliseconds()))
		}
		for k, v := range settings {
			rep.BrokerSettings = append(rep.BrokerSettings, k+"="+v)
		}
		slices.Sort(rep.BrokerSettings)
		d := initialRebalanceDelay
		rep.GroupInitialRebalanceDelayMs = &d
		n, err := startNode(ctx, settings, *brokerLog)
		if err != nil {
			logf("starting the node: %v", err)
			return 1
		}
		defer n.close()
		brokers = []string{n.addr()}
		rep.Broker = "in-process Samsa node (fresh, loopback " + n.addr() + ")"
	}
	rep.Notes = append(rep.Notes,
		"group.initial.rebalance.delay.ms only delays a NEW group's first rebalance; each round forms a new group, waits until it is stable and consuming, and only then starts the measured member, so the delay is not in the measurement",
		"join→all consuming: from just before the new member's kgo.NewClient until each of the members has received a record from a partition it owns in the final balanced assignment, after its last assignment change (resolution: the trickle interval)",
		"stop-the-world: total time during which at least one existing member owned no partition (OnPartitionsRevoked/Assigned timestamps)",
		"max partition gap: the longest time one partition had no owner",
		"existing members notice: until the first assignment change of an existing member",
		"the new member starts at a random point of the existing members' heartbeat cycle (a random wait in [0, heartbeat) after the group is stable), so the medians include the average wait for the next heartbeat",
	)

	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("rebalance-bench-admin"))
	if err != nil {
		logf("client: %v", err)
		return 1
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	topic := fmt.Sprintf("rebalance-bench-%d", time.Now().UnixNano())
	if err := createTopic(ctx, adm, topic, *partitions); err != nil {
		logf("creating topic %s: %v", topic, err)
		return 1
	}
	if *brokersFlag != "" {
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = adm.DeleteTopic(dctx, topic)
		}()
	}
	tr, err := startTrickle(brokers, topic, *partitions, *trickleEvery)
	if err != nil {
		logf("producer: %v", err)
		return 1
	}
	defer tr.stop()
	if err := waitFor(ctx, time.Minute, func() bool { return tr.produced.Load() >= int64(*partitions) }); err != nil {
		logf("the producer did not get its first records acknowledged: %v", err)
		return 1
	}

	classicHB := 3 * time.Second // kgo's default
	if *fast {
		classicHB = fastHeartbeat
	}
	rep.ClassicHeartbeatMs = ms(classicHB)
	kipHB, kipErr := kip848Heartbeat(ctx, admCl, topic)
	if kipErr == nil {
		rep.KIP848HeartbeatMs = ms(kipHB)
		if *fast && kipHB > fastHeartbeat {
			rep.Notes = append(rep.Notes, fmt.Sprintf("--fast: the broker's KIP-848 heartbeat interval is %v, not %v (set group.consumer.heartbeat.interval.ms=500 on the broker)", kipHB, fastHeartbeat))
		}
	}
	logf("%s; topic %s with %d partitions; classic heartbeat %v, KIP-848 heartbeat %v", rep.Broker, topic, *partitions, classicHB, fmtHB(kipHB, kipErr))

	var stats []*protocolStats
	for _, p := range selected {
		ps := &protocolStats{protocol: p, HeartbeatMs: ms(classicHB)}
		if p.kip848 {
			ps.HeartbeatMs = ms(kipHB)
			if kipErr != nil {
				ps.Skipped = "the broker refused a KIP-848 heartbeat: " + kipErr.Error()
			}
		}
		stats = append(stats, ps)
	}
	// Rounds are interleaved across protocols so that slow phases of the shared machine
	// spread over all of them.
	for r := 1; r <= *rounds && ctx.Err() == nil; r++ {
		for _, ps := range stats {
			if ps.Skipped != "" || ctx.Err() != nil {
				continue
			}
			hb := time.Duration(ps.HeartbeatMs * float64(time.Millisecond))
			rc := roundConfig{
				brokers: brokers, topic: topic, partitions: *partitions, existing: *existing, fast: *fast,
				quiet:   hb + 500*time.Millisecond,
				jitter:  hb,
				confirm: max(hb, time.Second),
				timeout: *phaseTimeout,
				verbose: *verbose,
			}
			res := runRound(ctx, rc, ps.protocol, r)
			ps.Results = append(ps.Results, res)
			if res.Error != "" {
				ps.Failed++
				logf("round %d/%d %s: FAILED: %s", r, *rounds, ps.Name, res.Error)
				continue
			}
			ps.OK++
			logf("round %d/%d %-19s join→all consuming %7.3fs  new member %7.3fs  noticed %6.3fs  stop-the-world %6.3fs  max partition gap %6.3fs  (setup %.1fs)",
				r, *rounds, ps.Name, res.JoinToAllConsumingMs/1000, res.NewMemberConsumingMs/1000, res.FirstChangeMs/1000,
				res.StopTheWorldMs/1000, res.MaxPartitionGapMs/1000, res.StableSetupMs/1000)
		}
	}
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "the run was cut short: "+context.Cause(ctx).Error())
	}
	for _, ps := range stats {
		var join, nm, first, stw, gap []float64
		for _, r := range ps.Results {
			if r.Error != "" {
				continue
			}
			join = append(join, r.JoinToAllConsumingMs)
			nm = append(nm, r.NewMemberConsumingMs)
			first = append(first, r.FirstChangeMs)
			stw = append(stw, r.StopTheWorldMs)
			gap = append(gap, r.MaxPartitionGapMs)
		}
		for _, r := range ps.Results {
			if !ps.kip848 && r.ClientHeartbeatMs > 0 {
				ps.HeartbeatMs = r.ClientHeartbeatMs // as the member's kgo client reports it
			}
		}
		ps.JoinToAllConsumingMs = summarize(join)
		ps.NewMemberConsumingMedianMs = summarize(nm).Median
		ps.FirstChangeMedianMs = summarize(first).Median
		ps.StopTheWorldMedianMs = summarize(stw).Median
		ps.MaxPartitionGapMedianMs = summarize(gap).Median
		rep.Protocols = append(rep.Protocols, *ps)
	}
	rep.RecordsProduced = tr.produced.Load()
	rep.ProduceErrors = tr.failed.Load()
	rep.ProduceDropped = tr.dropped.Load()
	if v, ok := tr.lastErr.Load().(string); ok {
		rep.Notes = append(rep.Notes, "last produce error: "+v)
	}
	rep.ElapsedS = time.Since(rep.Started).Round(time.Second).Seconds()

	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			logf("%v", err)
			return 1
		}
	} else {
		printTable(os.Stdout, rep)
	}
	for _, ps := range rep.Protocols {
		if ps.Failed > 0 || ps.OK == 0 {
			return 1
		}
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

func fmtHB(d time.Duration, err error) string {
	if err != nil {
		return "unavailable (" + err.Error() + ")"
	}
	return d.String()
}

func secs(msv float64) string {
	if msv < 1000 {
		return fmt.Sprintf("%.0f ms", msv)
	}
	return fmt.Sprintf("%.2f s", msv/1000)
}

func printTable(w io.Writer, rep *report) {
	fmt.Fprintf(w, "Join of member %d into a stable, consuming %d-member group; %d partitions, a record per partition every %s; %d rounds per protocol, %s heartbeats.\n",
		rep.ExistingMembers+1, rep.ExistingMembers, rep.Partitions, time.Duration(rep.TrickleMs*float64(time.Millisecond)), rep.Rounds, rep.Mode)
	fmt.Fprintf(w, "Broker: %s", rep.Broker)
	if len(rep.BrokerSettings) > 0 {
		fmt.Fprintf(w, " with %s", strings.Join(rep.BrokerSettings, ", "))
	}
	fmt.Fprintf(w, ".\nHeartbeat intervals: classic %s (kgo client setting), KIP-848 %s (the broker's group.consumer.heartbeat.interval.ms, from its heartbeat response).\n\n",
		secs(rep.ClassicHeartbeatMs), secs(rep.KIP848HeartbeatMs))
	fmt.Fprintln(w, "| protocol | heartbeat | rounds ok | join→all consuming median | min | max | new member consuming (median) | existing members notice (median) | stop-the-world (median) | max partition gap (median) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, ps := range rep.Protocols {
		if ps.Skipped != "" {
			fmt.Fprintf(w, "| %s | | skipped: %s | | | | | | | |\n", ps.Name, ps.Skipped)
			continue
		}
		if ps.OK == 0 {
			fmt.Fprintf(w, "| %s | %s | 0/%d | | | | | | | |\n", ps.Name, secs(ps.HeartbeatMs), len(ps.Results))
			continue
		}
		j := ps.JoinToAllConsumingMs
		fmt.Fprintf(w, "| %s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s |\n",
			ps.Name, secs(ps.HeartbeatMs), ps.OK, len(ps.Results), secs(j.Median), secs(j.Min), secs(j.Max),
			secs(ps.NewMemberConsumingMedianMs), secs(ps.FirstChangeMedianMs), secs(ps.StopTheWorldMedianMs), secs(ps.MaxPartitionGapMedianMs))
	}
	fmt.Fprintln(w)
	for _, ps := range rep.Protocols {
		fmt.Fprintf(w, "- %s: %s\n", ps.Name, ps.Client)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	fmt.Fprintf(w, "- trickle: %d records produced, %d errors, %d dropped (buffer full); run took %s\n",
		rep.RecordsProduced, rep.ProduceErrors, rep.ProduceDropped, time.Duration(rep.ElapsedS*float64(time.Second)))
}
