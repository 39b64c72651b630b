package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Controller membership of a dynamic quorum (KIP-853): AddRaftVoter and RemoveRaftVoter, which
// kafka-metadata-quorum add-controller and remove-controller send, and ControllerRegistration,
// with which a controller that is not a voter asks the active controller to replicate the
// metadata log to it. The active controller serves them (controller.Controller's AddVoter,
// RemoveVoter, RegisterController); a broker forwards AddRaftVoter and RemoveRaftVoter there,
// as Kafka's brokers do. ControllerRegistration is served on the controller listener only.
func init() {
	register(kmsg.AddRaftVoter.Int16(), 0, 1, handleAddRaftVoter)
	register(kmsg.RemoveRaftVoter.Int16(), 0, 0, handleRemoveRaftVoter)
	register(kmsg.ControllerRegistration.Int16(), 0, 0, handleControllerRegistration)
}

func handleAddRaftVoter(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.AddRaftVoterRequest)
	timeout := time.Duration(max(r.TimeoutMillis, 15000)) * time.Millisecond
	return b.voterChange(req, r.VoterID, timeout, func(nl NodeLifecycle) kmsg.Response {
		return nl.HandleAddRaftVoter(req.conn.ctx, r)
	}), nil
}

func handleRemoveRaftVoter(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.RemoveRaftVoterRequest)
	return b.voterChange(req, r.VoterID, 30*time.Second, func(nl NodeLifecycle) kmsg.Response {
		return nl.HandleRemoveRaftVoter(req.conn.ctx, r)
	}), nil
}

// voterChange serves AddRaftVoter or RemoveRaftVoter: handled by the active controller, sent
// there (bounded by timeout) from any other node; refusals are logged.
func (b *Broker) voterChange(req *request, voter int32, timeout time.Duration, handle func(NodeLifecycle) kmsg.Response) kmsg.Response {
	var resp kmsg.Response
	nl := b.lifecycle()
	switch {
	case b.quorum != nil && !b.quorum.IsLeader():
		ctx, cancel := context.WithTimeout(req.conn.ctx, timeout)
		defer cancel()
		var err error
		if resp, err = b.quorum.Forward(ctx, req.kreq); err != nil {
			resp = req.kreq.ResponseKind()
			setVoterChangeError(resp, errCode(err), errMessage(err))
		}
		resp.SetVersion(req.kreq.GetVersion())
	case nl == nil:
		resp = req.kreq.ResponseKind()
		setVoterChangeError(resp, kerr.NotController.Code, nil)
	default:
		resp = handle(nl)
	}
	if code, msg := voterChangeError(resp); code != 0 {
		b.log.Info("refused a controller membership change", "api", kmsg.NameForKey(req.kreq.Key()), "voter", voter,
			"err", kerr.ErrorForCode(code), "message", msg)
	}
	return resp
}

func setVoterChangeError(resp kmsg.Response, code int16, msg *string) {
	switch r := resp.(type) {
	case *kmsg.AddRaftVoterResponse:
		r.ErrorCode, r.ErrorMessage = code, msg
	case *kmsg.RemoveRaftVoterResponse:
		r.ErrorCode, r.ErrorMessage = code, msg
	}
}

func voterChangeError(resp kmsg.Response) (int16, string) {
	var code int16
	var msg *string
	switch r := resp.(type) {
	case *kmsg.AddRaftVoterResponse:
		code, msg = r.ErrorCode, r.ErrorMessage
	case *kmsg.RemoveRaftVoterResponse:
		code, msg = r.ErrorCode, r.ErrorMessage
	}
	if msg == nil {
		return code, ""
	}
	return code, *msg
}

func handleControllerRegistration(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ControllerRegistrationRequest)
	nl := b.lifecycle()
	if nl == nil {
		resp := r.ResponseKind().(*kmsg.ControllerRegistrationResponse)
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	return nl.HandleControllerRegistration(req.conn.ctx, r), nil
}
