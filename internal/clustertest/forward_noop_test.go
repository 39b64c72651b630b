package clustertest

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// noopBound is far under the 10 s a forwarding broker waits at most for its image to move: a
// hang check, not a timing assertion.
const noopBound = 5 * time.Second

// TestForwardedNoopAnswers: a change forwarded by a broker that is not the active controller
// and that writes no record (a binding that exists, a config value already set, a feature at
// its level, a deletion that matches nothing) is answered at once, not after the forwarding
// broker's wait for its image to move ends. Each request is sent twice: the first may write,
// the second writes nothing.
func TestForwardedNoopAnswers(t *testing.T) {
	c := testcluster.StartCluster(t, 3, standardAuthorizer, "super.users=User:ANONYMOUS")
	leader := activeController(t, c)
	via := c.Nodes[(leader+1)%3].Addr()
	if _, err := adminFor(t, via).CreateTopic(ctxT(t), 1, 3, nil, "noop-t"); err != nil {
		t.Fatal(err)
	}
	level := c.Server(leader).Image().FeatureLevel("group.version")
	// The client waits longer than the forwarding broker would, so a hang shows as a slow answer.
	cl, err := kgo.NewClient(kgo.SeedBrokers(via), kgo.RequestRetries(0), kgo.RequestTimeoutOverhead(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	for _, tc := range []struct {
		name string
		req  func() kmsg.Request
		code func(kmsg.Response) int16
	}{
		{"CreateAcls of an existing binding", func() kmsg.Request {
			req := kmsg.NewPtrCreateACLsRequest()
			cr := kmsg.NewCreateACLsRequestCreation()
			cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, "noop-t", kmsg.ACLResourcePatternTypeLiteral
			cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
			req.Creations = append(req.Creations, cr)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.CreateACLsResponse).Results[0].ErrorCode }},
		{"DeleteAcls matching nothing", func() kmsg.Request {
			req := kmsg.NewPtrDeleteACLsRequest()
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			f.Principal, f.Operation, f.PermissionType = kmsg.StringPtr("User:nobody"), kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			req.Filters = append(req.Filters, f)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.DeleteACLsResponse).Results[0].ErrorCode }},
		{"IncrementalAlterConfigs of a value already set", func() kmsg.Request {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			r := kmsg.NewIncrementalAlterConfigsRequestResource()
			r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "noop-t"
			cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			cfg.Name, cfg.Value, cfg.Op = "retention.ms", kmsg.StringPtr("3600000"), kmsg.IncrementalAlterConfigOpSet
			r.Configs = append(r.Configs, cfg)
			req.Resources = append(req.Resources, r)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode }},
		{"UpdateFeatures to the current level", func() kmsg.Request {
			req := kmsg.NewPtrUpdateFeaturesRequest()
			fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
			fu.Feature, fu.MaxVersionLevel, fu.UpgradeType = "group.version", level, 1
			req.FeatureUpdates = append(req.FeatureUpdates, fu)
			return req
		}, func(r kmsg.Response) int16 {
			resp := r.(*kmsg.UpdateFeaturesResponse)
			if resp.ErrorCode != 0 || len(resp.Results) == 0 {
				return resp.ErrorCode
			}
			return resp.Results[0].ErrorCode
		}},
		{"AlterUserScramCredentials deleting a missing credential", func() kmsg.Request {
			req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
			d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
			d.Name, d.Mechanism = "nobody", 2
			req.Deletions = append(req.Deletions, d)
			return req
		}, func(r kmsg.Response) int16 {
			if code := r.(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode; code != kerr.ResourceNotFound.Code {
				return code
			}
			return 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 {
				start := time.Now()
				resp, err := cl.SeedBrokers()[0].Request(ctxT(t), tc.req())
				took := time.Since(start)
				if err != nil {
					t.Fatalf("attempt %d: %v after %v", i+1, err, took.Round(time.Millisecond))
				}
				if code := tc.code(resp); code != 0 {
					t.Fatalf("attempt %d: error %v", i+1, kerr.ErrorForCode(code))
				}
				if took > noopBound {
					t.Fatalf("attempt %d answered after %v, want well under the forwarding wait (10 s)", i+1, took.Round(time.Millisecond))
				}
			}
		})
	}
}
