package crashtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// runSamsa runs the samsa binary with args and returns its combined output, failing the test
// if it fails.
func runSamsa(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(samsaBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("samsa %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestLocalClusterStartStop runs `samsa cluster start` as a user would (the built-in
// config/cluster files, a temporary cluster directory, free ports): it formats three nodes
// with one cluster id and returns once they serve; an RF=3 topic created with samsa topic
// create has three replicas per partition; status shows three running nodes; stop ends them
// all and status then says so; a second start reuses the cluster id.
func TestLocalClusterStartStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	var ports []string
	for range 6 {
		ports = append(ports, strconv.Itoa(freePort(t)))
	}
	bootstrap := fmt.Sprintf("127.0.0.1:%s,127.0.0.1:%s,127.0.0.1:%s", ports[0], ports[2], ports[4])
	t.Cleanup(func() { stopLeftovers(t, dir) })

	out := runSamsa(t, "cluster", "start", "--dir", dir, "--ports", strings.Join(ports, ","))
	if !strings.Contains(out, "bootstrap servers: "+bootstrap+"\n") {
		t.Fatalf("start does not print the bootstrap servers %s:\n%s", bootstrap, out)
	}
	if n := strings.Count(out, "Formatting "); n != 3 {
		t.Errorf("start formatted %d directories, want 3:\n%s", n, out)
	}
	id, err := os.ReadFile(filepath.Join(dir, "cluster.id"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		meta, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d", i), "data", "meta.properties"))
		if err != nil || !strings.Contains(string(meta), "cluster.id="+strings.TrimSpace(string(id))) {
			t.Errorf("node %d: meta.properties without cluster.id %s (%v):\n%s", i, id, err, meta)
		}
	}

	out = runSamsa(t, "topic", "create", "rf3", "--partitions", "3", "--replication-factor", "3", "--brokers", bootstrap)
	if !strings.Contains(out, "replication factor: 3") {
		t.Errorf("topic create: %s", out)
	}
	out = runSamsa(t, "topic", "describe", "rf3", "--brokers", bootstrap)
	for p := 0; p < 3; p++ {
		found := false
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) >= 4 && f[0] == strconv.Itoa(p) && len(strings.Split(f[2], ",")) == 3 {
				found = true
			}
		}
		if !found {
			t.Errorf("partition %d has no row with 3 replicas:\n%s", p, out)
		}
	}
	out = runSamsa(t, "cluster", "describe", "--brokers", bootstrap)
	for _, rack := range []string{"r1", "r2", "r3"} {
		if !strings.Contains(out, " "+rack+"\n") {
			t.Errorf("cluster describe shows no broker in rack %s:\n%s", rack, out)
		}
	}
	out = runSamsa(t, "cluster", "status", "--dir", dir)
	if n := strings.Count(out, " running "); n != 3 {
		t.Errorf("status shows %d running nodes, want 3:\n%s", n, out)
	}
	pids := clusterPids(t, dir)

	out = runSamsa(t, "cluster", "stop", "--dir", dir)
	if n := strings.Count(out, "stopped node "); n != 3 {
		t.Errorf("stop stopped %d nodes, want 3:\n%s", n, out)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			t.Errorf("pid %d still runs after samsa cluster stop", pid)
		}
	}
	status := exec.Command(samsaBin, "cluster", "status", "--dir", dir)
	b, err := status.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "0 of 3 nodes running") {
		t.Errorf("status after stop: %v\n%s", err, b)
	}
	for i := 1; i <= 3; i++ {
		log, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d", i), "server.log"))
		if !strings.Contains(string(log), "samsa stopped cleanly") {
			t.Errorf("node %d did not log a clean stop:\n%s", i, log)
		}
	}

	// A second start keeps the cluster id and the data: the topic is still there.
	out = runSamsa(t, "cluster", "start", "--dir", dir, "--ports", strings.Join(ports, ","))
	if strings.Contains(out, "Formatting ") {
		t.Errorf("a second start formatted again:\n%s", out)
	}
	out = runSamsa(t, "topic", "describe", "rf3", "--brokers", bootstrap)
	if !strings.Contains(out, "Replication factor:  3") {
		t.Errorf("rf3 after a restart:\n%s", out)
	}
	runSamsa(t, "cluster", "stop", "--dir", dir)
}

// clusterPids returns the pids in the cluster directory's pid files.
func clusterPids(t *testing.T, dir string) []int {
	files, _ := filepath.Glob(filepath.Join(dir, "node*", "server.pid"))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// zombie reports whether pid has exited but not been reaped (its parent, the start command,
// is gone, and the reaper may be slow or absent in a container).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// stopLeftovers stops what a failed test left running: samsa cluster stop, then SIGKILL to
// any pid of the pid files still running samsa.
func stopLeftovers(t *testing.T, dir string) {
	pids := clusterPids(t, dir)
	if len(pids) == 0 {
		return
	}
	exec.Command(samsaBin, "cluster", "stop", "--dir", dir, "--timeout", "20s").Run()
	for _, pid := range pids {
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmdline), dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
