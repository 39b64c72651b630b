package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// Until transactions exist, a transactional producer fails at once with a non-retriable
// error, instead of retrying COORDINATOR_NOT_AVAILABLE until its own deadline.
func TestTransactionalProducerFailsAtOnce(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "tx", 1, nil)
	cl := newClient(t, n, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("tx"),
		kgo.TransactionTimeout(10*time.Second))
	// The deadline only bounds a broken run: a retriable refusal would be retried until it.
	ctx, cancel := context.WithTimeout(ctxT(t), time.Minute)
	defer cancel()
	err := cl.BeginTransaction()
	if err == nil {
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	}
	if !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("transactional produce: %v, want INVALID_REQUEST", err)
	}
}

// Creating or altering a topic to cleanup.policy=compact succeeds with a warning in the
// response message, since nothing compacts yet; other topics get no message.
func TestCompactPolicyWarns(t *testing.T) {
	n := testcluster.Start(t)
	adm := newAdmin(t, n)
	ctx := ctxT(t)
	created, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": strPtr("compact")}, "compacted")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	if !strings.Contains(created.ErrMessage, "does not compact") {
		t.Errorf("create compacted: message %q, want the compaction warning", created.ErrMessage)
	}
	plain, err := adm.CreateTopic(ctx, 1, 1, nil, "plain")
	if err != nil || plain.Err != nil || plain.ErrMessage != "" {
		t.Fatalf("create plain: %v %v %q", err, plain.Err, plain.ErrMessage)
	}
	for _, tc := range []struct {
		value string
		warns bool
	}{{"compact,delete", true}, {"delete", false}} {
		resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: strPtr(tc.value)}}, "plain")
		if err != nil || len(resps) != 1 || resps[0].Err != nil {
			t.Fatalf("alter to %s: %v %+v", tc.value, err, resps)
		}
		if got := strings.Contains(resps[0].ErrMessage, "does not compact"); got != tc.warns {
			t.Errorf("alter to %s: message %q, want warning %v", tc.value, resps[0].ErrMessage, tc.warns)
		}
	}
}
