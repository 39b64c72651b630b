package broker

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/controller"
)

// The SCRAM credential APIs (KIP-554): DescribeUserScramCredentials v0 from the metadata
// image, AlterUserScramCredentials v0 through the controller (forwarded to the active one).

func init() {
	register(kmsg.DescribeUserSCRAMCredentials.Int16(), 0, 0, handleDescribeUserScramCredentials)
	register(kmsg.AlterUserSCRAMCredentials.Int16(), 0, 0, handleAlterUserScramCredentials)
}

func handleDescribeUserScramCredentials(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	img := b.ctrl.Image()
	var users []string
	if len(r.Users) == 0 {
		users = slices.Sorted(maps.Keys(img.ScramCredentials))
	} else {
		for _, u := range r.Users {
			users = append(users, u.Name)
		}
	}
	count := map[string]int{}
	for _, u := range users {
		count[u]++
	}
	for _, u := range users {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u
		creds := img.ScramCredentials[u]
		switch {
		case count[u] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + u)
		case len(creds) == 0:
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + u)
		default:
			for _, m := range slices.Sorted(maps.Keys(creds)) {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = auth.ScramMechanismCode(m), creds[m].Iterations
				res.CredentialInfos = append(res.CredentialInfos, ci)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

func handleAlterUserScramCredentials(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	if !b.authorizeCluster(req, kmsg.ACLOperationAlter) {
		// Kafka's error response: each user named once, CLUSTER_AUTHORIZATION_FAILED.
		seen := map[string]bool{}
		names := make([]string, 0, len(r.Deletions)+len(r.Upsertions))
		for _, d := range r.Deletions {
			names = append(names, d.Name)
		}
		for _, u := range r.Upsertions {
			names = append(names, u.Name)
		}
		for _, name := range names {
			if !seen[name] {
				seen[name] = true
				rr := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				rr.User, rr.ErrorCode = name, kerr.ClusterAuthorizationFailed.Code
				resp.Results = append(resp.Results, rr)
			}
		}
		return resp, nil
	}
	var dels []controller.ScramDeletion
	var ups []controller.ScramUpsertion
	for _, d := range r.Deletions {
		dels = append(dels, controller.ScramDeletion{Name: d.Name, Mechanism: auth.ScramMechanismName(d.Mechanism)})
	}
	for _, u := range r.Upsertions {
		ups = append(ups, controller.ScramUpsertion{Name: u.Name, Mechanism: auth.ScramMechanismName(u.Mechanism),
			Iterations: u.Iterations, Salt: u.Salt, SaltedPassword: u.SaltedPassword})
	}
	for _, res := range b.ctrl.AlterUserScramCredentials(req.conn.ctx, dels, ups) {
		rr := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		rr.User, rr.ErrorCode, rr.ErrorMessage = res.User, errCode(res.Err), errMessage(res.Err)
		resp.Results = append(resp.Results, rr)
	}
	b.awaitMetadata(req)
	return resp, nil
}
