package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// toolResult is what one perf tool run measured. Latencies are in milliseconds; zero when the
// tool does not measure them.
type toolResult struct {
	Records       int64   `json:"records"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	AvgMs         float64 `json:"avg_ms,omitempty"`
	MaxMs         float64 `json:"max_ms,omitempty"`
	P50Ms         float64 `json:"p50_ms,omitempty"`
	P95Ms         float64 `json:"p95_ms,omitempty"`
	P99Ms         float64 `json:"p99_ms,omitempty"`
	P999Ms        float64 `json:"p99_9_ms,omitempty"`
}

// producerPerfLine matches the summary of kafka-producer-perf-test (ProducerPerformance):
// "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P ms 50th,
// P ms 95th, P ms 99th, P ms 99.9th."
var producerPerfLine = regexp.MustCompile(`(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th`)

// parseProducerPerformance reads the last summary line of ProducerPerformance's output.
func parseProducerPerformance(out string) (toolResult, error) {
	all := producerPerfLine.FindAllStringSubmatch(out, -1)
	if len(all) == 0 {
		return toolResult{}, fmt.Errorf("no summary line in ProducerPerformance output %q", tail(out))
	}
	m := all[len(all)-1]
	f := make([]float64, len(m))
	for i := 1; i < len(m); i++ {
		f[i], _ = strconv.ParseFloat(m[i], 64)
	}
	return toolResult{Records: int64(f[1]), RecordsPerSec: f[2], MBPerSec: f[3], AvgMs: f[4], MaxMs: f[5],
		P50Ms: f[6], P95Ms: f[7], P99Ms: f[8], P999Ms: f[9]}, nil
}

// parseConsumerPerformance reads ConsumerPerformance's CSV output: a header line naming the
// columns, then one line of values. It returns the rates over the fetch time (which leaves out
// the consumer group's join), and the total rates.
func parseConsumerPerformance(out string) (fetch, total toolResult, err error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "start.time") {
			continue
		}
		names := splitCSV(lines[i])
		vals := splitCSV(lines[i+1])
		if len(vals) != len(names) {
			break
		}
		col := map[string]float64{}
		for j, n := range names {
			col[n], _ = strconv.ParseFloat(vals[j], 64)
		}
		n := int64(col["data.consumed.in.nMsg"])
		fetch = toolResult{Records: n, RecordsPerSec: col["fetch.nMsg.sec"], MBPerSec: col["fetch.MB.sec"]}
		total = toolResult{Records: n, RecordsPerSec: col["nMsg.sec"], MBPerSec: col["MB.sec"]}
		if n == 0 {
			return fetch, total, fmt.Errorf("ConsumerPerformance consumed no records: %q", tail(out))
		}
		return fetch, total, nil
	}
	return fetch, total, fmt.Errorf("no result in ConsumerPerformance output %q", tail(out))
}

func splitCSV(line string) []string {
	parts := strings.Split(line, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// samsaPerfOutput is the JSON line `samsa perf ... --json` prints last.
type samsaPerfOutput struct {
	Result struct {
		Records       int64   `json:"records"`
		RecordsPerSec float64 `json:"records_per_sec"`
		MBPerSec      float64 `json:"mb_per_sec"`
		Latency       *struct {
			AvgMs  float64 `json:"avg_ms"`
			MaxMs  float64 `json:"max_ms"`
			P50Ms  float64 `json:"p50_ms"`
			P95Ms  float64 `json:"p95_ms"`
			P99Ms  float64 `json:"p99_ms"`
			P999Ms float64 `json:"p99_9_ms"`
		} `json:"latency"`
	} `json:"result"`
}

// parseSamsaPerf reads the JSON summary of `samsa perf produce|consume|e2e --json`.
func parseSamsaPerf(out string) (toolResult, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.HasPrefix(lines[i], "{") {
			continue
		}
		var o samsaPerfOutput
		if err := json.Unmarshal([]byte(lines[i]), &o); err != nil {
			return toolResult{}, fmt.Errorf("samsa perf JSON: %w", err)
		}
		r := toolResult{Records: o.Result.Records, RecordsPerSec: o.Result.RecordsPerSec, MBPerSec: o.Result.MBPerSec}
		if l := o.Result.Latency; l != nil {
			r.AvgMs, r.MaxMs, r.P50Ms, r.P95Ms, r.P99Ms, r.P999Ms = l.AvgMs, l.MaxMs, l.P50Ms, l.P95Ms, l.P99Ms, l.P999Ms
		}
		return r, nil
	}
	return toolResult{}, fmt.Errorf("no JSON summary in samsa perf output %q", tail(out))
}

// tail returns the end of a tool's output for error messages.
func tail(s string) string {
	if len(s) > 400 {
		return "..." + s[len(s)-400:]
	}
	return s
}
