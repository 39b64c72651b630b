package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs is every process the runner started and has not reaped; killAll ends them (and their
// process groups) on the way out, whatever the reason.
var procs = struct {
	sync.Mutex
	m map[int]*exec.Cmd
}{m: map[int]*exec.Cmd{}}

// startProc starts cmd in its own process group and tracks it. The child also gets SIGKILL if
// the runner dies without cleaning up (Pdeathsig; best effort, as it follows the OS thread
// that started the child).
func startProc(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	procs.Lock()
	procs.m[cmd.Process.Pid] = cmd
	procs.Unlock()
	return nil
}

// forget stops tracking a reaped process.
func forget(cmd *exec.Cmd) {
	procs.Lock()
	delete(procs.m, cmd.Process.Pid)
	procs.Unlock()
}

// killAll sends SIGKILL to the process group of every tracked process.
func killAll() {
	procs.Lock()
	defer procs.Unlock()
	for pid := range procs.m {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// runTool runs a client tool to completion, bounded by timeout, and returns its stdout. Its
// stderr goes to logPath (appended) so that failures can be diagnosed.
func runTool(ctx context.Context, timeout time.Duration, logPath string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(name, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n=== %s %s\n", name, strings.Join(args, " "))
	cmd.Stderr = logf
	if err := startProc(cmd); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("%s: %w", name, ctx.Err())
	}
	forget(cmd)
	fmt.Fprintf(logf, "--- stdout:\n%s", stdout.String())
	if err != nil {
		return stdout.String(), fmt.Errorf("%s failed: %w (log: %s)", name, err, logPath)
	}
	return stdout.String(), nil
}

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in /proc/PID/stat.
var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}()

// cpuSeconds returns the user+system CPU time of pid so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields are counted
	// after its closing parenthesis; utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return (utime + stime) / clockTicks, nil
}

// memStatus returns VmRSS and VmHWM of pid in MiB.
func memStatus(pid int) (rss, hwm float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		kb, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	return rss, hwm, sc.Err()
}

// usage measures a broker's processes (one, or every node of a cluster) across one workload
// run: CPU seconds used and the largest resident set sampled every 100 ms, both summed over
// the processes.
type usage struct {
	pids     []int
	cpu0     float64
	stop     chan struct{}
	done     chan struct{}
	maxRSSMB float64
}

func sumCPU(pids []int) (float64, error) {
	var total float64
	for _, pid := range pids {
		c, err := cpuSeconds(pid)
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}

func startUsage(pids ...int) *usage {
	u := &usage{pids: pids, stop: make(chan struct{}), done: make(chan struct{})}
	u.cpu0, _ = sumCPU(pids)
	go func() {
		defer close(u.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			var sum float64
			ok := true
			for _, pid := range pids {
				rss, _, err := memStatus(pid)
				if err != nil {
					ok = false
					break
				}
				sum += rss
			}
			if ok && sum > u.maxRSSMB {
				u.maxRSSMB = sum
			}
			select {
			case <-u.stop:
				return
			case <-t.C:
			}
		}
	}()
	return u
}

// finish stops sampling and returns the CPU seconds used and the largest RSS seen (MiB).
func (u *usage) finish() (cpu, maxRSS float64) {
	close(u.stop)
	<-u.done
	cpu1, err := sumCPU(u.pids)
	if err != nil {
		return 0, u.maxRSSMB
	}
	return cpu1 - u.cpu0, u.maxRSSMB
}
