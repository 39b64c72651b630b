package controller

import (
	"testing"
	"time"
)

// TestRelayLeadershipNeverBlocksRaft: Raft's leadership notifications are taken at once even
// while nobody reads what the relay passes on (the watcher busy), and the watcher then gets
// the latest state only.
func TestRelayLeadershipNeverBlocksRaft(t *testing.T) {
	c := &Controller{notify: make(chan bool), done: make(chan struct{})} // unbuffered: a send waits for the relay
	latest := make(chan bool, 1)
	c.wg.Add(1)
	go c.relayLeadership(latest)
	defer func() { close(c.done); c.wg.Wait() }()
	for i := 0; i < 101; i++ { // flapping: true, false, ..., true
		select {
		case c.notify <- i%2 == 0:
		case <-time.After(10 * time.Second):
			t.Fatalf("notification %d was not taken: Raft would wait on it", i)
		}
	}
	// The relay may still be passing the last one on; the state it leaves is the latest.
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case v := <-latest:
			if v && len(latest) == 0 {
				return
			}
			if !v {
				continue
			}
		case <-time.After(time.Until(deadline)):
			t.Fatal("no state passed on")
		}
		if time.Now().After(deadline) {
			t.Fatal("the latest state passed on is not the last notification")
		}
	}
}
