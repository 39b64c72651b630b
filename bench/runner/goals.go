package main

import (
	"fmt"
	"io"
	"strings"
)

// goal is one target of the bench issue, checked against a finished table: the figure is a
// ratio oriented as the table's (above 1: Samsa better), and the goal is met when it is at
// least want.
type goal struct {
	Name   string    `json:"name"`
	Want   float64   `json:"want"`
	Got    float64   `json:"got"`
	Ratios []float64 `json:"ratios,omitempty"` // the ratios a median was taken of
	Met    bool      `json:"met"`
}

// produceGoals are the load generators whose ratios make up one produce goal each: the
// client tools (each record built by a client) and the broker-bound load.
var produceGoals = []struct {
	name  string
	tools []string
}{
	{"produce throughput ≥ 1.5× Kafka, client tools (median of the kafka-producer-perf-test and samsa perf produce ratios)",
		[]string{toolKafkaProducer, toolSamsaProduce}},
	{"produce throughput ≥ 1.5× Kafka, broker-bound (median of the batchload ratios)", []string{toolBatchLoad}},
}

// computeGoals derives the goals from r.Table; figures missing from a partial run are left out.
func (r *results) computeGoals() {
	r.Goals = nil
	for _, pg := range produceGoals {
		var ratios []float64
		for _, rw := range r.Table {
			if !strings.HasPrefix(rw.ID, "produce/") || !strings.HasSuffix(rw.ID, "/rate") || rw.RatioLabel == "" {
				continue
			}
			for _, tool := range pg.tools {
				if strings.HasSuffix(rw.ID, "/"+tool+"/rate") {
					ratios = append(ratios, rw.Ratio)
				}
			}
		}
		if len(ratios) > 0 {
			m := summarize(ratios).Median
			r.Goals = append(r.Goals, goal{Name: r.goalPrefix() + pg.name, Want: 1.5, Got: m, Ratios: ratios, Met: m >= 1.5})
		}
	}
	// The others are "Samsa's figure at most a fraction of Kafka's": the table's Kafka/Samsa
	// ratio at least the inverse of the fraction.
	for _, g := range []struct {
		id, name string
		frac     float64
	}{
		{figE2E99.ID, "e2e p99 latency ≤ 0.5× Kafka", 0.5},
		{figPeakRSS.ID, "broker RSS ≤ 0.2× Kafka (peak over a round)", 0.2},
		{figStartup.ID, "start → first acked produce ≤ 0.1× Kafka", 0.1},
		{figCleanRate.ID, "cleaning throughput ≥ Kafka's", 1},
	} {
		for _, rw := range r.Table {
			if rw.ID == g.id && rw.RatioLabel != "" {
				r.Goals = append(r.Goals, goal{Name: r.goalPrefix() + g.name, Want: 1 / g.frac, Got: rw.Ratio, Met: rw.Ratio >= 1/g.frac})
			}
		}
	}
	// Issue 13: transactional throughput ≥ 1.5× Kafka's and commit p99 ≤ 0.5× Kafka's, for
	// each transaction size.
	for _, size := range txnSizes {
		rate, _, p99, _ := txnFigures(size)
		for _, rw := range r.Table {
			switch {
			case rw.RatioLabel == "":
			case rw.ID == rate.ID:
				r.Goals = append(r.Goals, goal{Name: r.goalPrefix() + fmt.Sprintf("transactional throughput ≥ 1.5× Kafka, %d records per transaction", size), Want: 1.5, Got: rw.Ratio, Met: rw.Ratio >= 1.5})
			case rw.ID == p99.ID:
				r.Goals = append(r.Goals, goal{Name: r.goalPrefix() + fmt.Sprintf("commit p99 ≤ 0.5× Kafka, %d records per transaction", size), Want: 2, Got: rw.Ratio, Met: rw.Ratio >= 2})
			}
		}
	}
	// Issue 14: throughput over SASL_SSL (SCRAM-SHA-512) ≥ 1.5× Kafka's: the median of the tls
	// group's produce and consume rate ratios (both tools).
	var tlsRatios []float64
	for _, rw := range r.Table {
		over := strings.HasPrefix(rw.ID, "tls/") && !strings.HasPrefix(rw.ID, "tls/connect/") && !strings.HasPrefix(rw.ID, "tls/plaintext/")
		if over && strings.HasSuffix(rw.ID, "/rate") && rw.RatioLabel != "" {
			tlsRatios = append(tlsRatios, rw.Ratio)
		}
	}
	if len(tlsRatios) > 0 {
		m := summarize(tlsRatios).Median
		r.Goals = append(r.Goals, goal{Name: "throughput over SASL_SSL with SCRAM-SHA-512 ≥ 1.5× Kafka (median of the tls produce and consume ratios, both tools)",
			Want: 1.5, Got: m, Ratios: tlsRatios, Met: m >= 1.5})
	}
	// Issue 12: produce throughput while the cleaner runs drops by at most 20%: Samsa's own
	// ratio of the compacted topic's rate to the delete topic's, not a ratio to Kafka.
	for _, rw := range r.Table {
		if rw.ID == figCleanDrop.ID && rw.Samsa != nil {
			got := rw.Samsa.Median
			r.Goals = append(r.Goals, goal{Name: "Samsa: produce to a compacted topic while the cleaner runs ≥ 0.8× to a delete topic (not a ratio to Kafka)", Want: 0.8, Got: got, Met: got >= 0.8})
		}
	}
}

// goalPrefix names the cluster size in a cluster run's targets.
func (r *results) goalPrefix() string {
	if r.Machine.Nodes > 1 {
		return fmt.Sprintf("%d nodes, RF=%d, acks=all: ", r.Machine.Nodes, r.Machine.Nodes)
	}
	return ""
}

// writeGoals writes the goals as a Markdown table.
func (r *results) writeGoals(w io.Writer) {
	if len(r.Goals) == 0 {
		return
	}
	fmt.Fprintln(w, "| target | ratio (>1: Samsa better) | wanted | met |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	for _, g := range r.Goals {
		got := fmt.Sprintf("%.2f×", g.Got)
		if len(g.Ratios) > 1 {
			st := summarize(g.Ratios)
			got += fmt.Sprintf(" (%.2f–%.2f over %d)", st.Min, st.Max, len(g.Ratios))
		}
		met := "no"
		if g.Met {
			met = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | ≥ %.2f× | %s |\n", g.Name, got, g.Want, met)
	}
}
