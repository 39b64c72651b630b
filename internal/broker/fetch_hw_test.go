package broker_test

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// A fetch never serves a record at or above the high watermark it reports, however appends
// interleave with it: one client produces without pause while another sends thousands of
// fetches at the partition's tail. Checked on both read paths (sendfile regions and reads into
// memory).
func TestFetchNeverServesAtOrAboveItsHighWatermark(t *testing.T) {
	for _, sendfile := range []string{"1", "0"} {
		t.Run("sendfile="+sendfile, func(t *testing.T) {
			t.Setenv("SAMSA_SENDFILE", sendfile)
			n := testcluster.Start(t)
			createTopic(t, n, "hw", 1, nil)
			ctx, stop := context.WithCancel(ctxT(t))
			var wg sync.WaitGroup
			// Several producers keep appends back to back.
			for range 3 {
				producer := newClient(t, n, kgo.DefaultProduceTopic("hw"), kgo.ProducerLinger(0),
					kgo.MaxBufferedRecords(64))
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						producer.Produce(ctx, &kgo.Record{Value: []byte("v")}, nil)
					}
				}()
			}
			defer func() { stop(); wg.Wait() }()

			fetcher := newClient(t, n, kgo.MaxVersions(kversion.V2_8_0()))
			// At most 20,000 fetches, for at most 20 s (the race detector and a loaded machine slow
			// them down; a race that breaks the rule showed within 400 fetches under -race).
			const maxFetches = 20000
			budget := time.Now().Add(20 * time.Second)
			var offset int64
			var served, ahead, fetches int
			for i := 0; i < maxFetches && time.Now().Before(budget); i++ {
				fetches++
				req := newFetchRequest("hw", offset)
				req.MaxWaitMillis = 0
				resp, err := req.RequestWith(ctx, fetcher)
				if err != nil {
					t.Fatal(err)
				}
				p := resp.Topics[0].Partitions[0]
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					t.Fatalf("fetch %d from %d: %v", i, offset, err)
				}
				for _, b := range wholeBatches(p.RecordBatches) {
					served++
					if last := b.FirstOffset + int64(b.LastOffsetDelta); last >= p.HighWatermark {
						if ahead++; ahead <= 10 {
							t.Errorf("fetch %d from %d: batch %d-%d served with high watermark %d",
								i, offset, b.FirstOffset, last, p.HighWatermark)
						}
					}
				}
				// Fetch again just below the reported end, where appends land.
				offset = max(0, p.HighWatermark-3)
				if ahead > 0 {
					t.FailNow()
				}
			}
			if served == 0 || fetches < 500 {
				t.Fatalf("%d fetches served %d batches: too few to check anything", fetches, served)
			}
			t.Logf("%d fetches served %d batches", fetches, served)
		})
	}
}

// wholeBatches decodes the complete record batches of a fetch response (a trailing partial
// batch, which a size limit may cut, is dropped as clients drop it).
func wholeBatches(b []byte) []kmsg.RecordBatch {
	var out []kmsg.RecordBatch
	for len(b) >= 12 {
		n := 12 + int(binary.BigEndian.Uint32(b[8:]))
		if n > len(b) {
			break
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b[:n]); err == nil {
			out = append(out, rb)
		}
		b = b[n:]
	}
	return out
}

// Full fetches outside a session (epoch -1) and requests to open one (epoch 0) are served
// whatever the session id, as Kafka serves them; epoch 0 is answered with a new session's id,
// epoch -1 with 0; continuing a session that does not exist (any other epoch) is
// FETCH_SESSION_ID_NOT_FOUND.
func TestFetchSessionIDsAndEpochs(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "sess", 1, nil)
	producer := newClient(t, n, kgo.DefaultProduceTopic("sess"))
	if err := producer.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, n, kgo.MaxVersions(kversion.V2_8_0()))
	for _, tc := range []struct {
		sessionID, epoch int32
		want             error
	}{
		{-1, -1, nil}, // a full fetch outside any session, as some clients send it
		{0, -1, nil},
		{0, 0, nil},
		{7, -1, nil}, // closes session 7 (there is none) and fetches in full
		{7, 0, nil},  // closes session 7 and opens one
		{0, 1, kerr.FetchSessionIDNotFound},
		{7, 3, kerr.FetchSessionIDNotFound},
		{-1, 2, kerr.FetchSessionIDNotFound},
	} {
		req := newFetchRequest("sess", 0)
		req.SessionID, req.SessionEpoch = tc.sessionID, tc.epoch
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		got := kerr.ErrorForCode(resp.ErrorCode)
		if got != tc.want {
			t.Errorf("session %d epoch %d: error %v, want %v", tc.sessionID, tc.epoch, got, tc.want)
			continue
		}
		if opened := resp.SessionID != 0; opened != (tc.epoch == 0) {
			t.Errorf("session %d epoch %d: answered session id %d", tc.sessionID, tc.epoch, resp.SessionID)
		}
		if tc.want != nil {
			continue
		}
		if len(resp.Topics) != 1 || len(wholeBatches(resp.Topics[0].Partitions[0].RecordBatches)) != 1 {
			t.Errorf("session %d epoch %d: want the one batch of the topic, got %+v", tc.sessionID, tc.epoch, resp.Topics)
		}
	}
}
