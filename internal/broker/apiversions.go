package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ApiVersions.Int16(), 0, 4, handleApiVersions) }

func appendVersions(resp *kmsg.ApiVersionsResponse, controllerPort bool) {
	for _, a := range servedAPIs() {
		if !servedOn(a.key, controllerPort) {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
}

// ServedAPIs returns the APIs served on a client listener (controllerListener false) or on
// the controller listener, with their versions, as ApiVersions lists them. Tests generate
// their per-API tables from it, so that a new API cannot be added without its case.
func ServedAPIs(controllerListener bool) []kmsg.ApiVersionsResponseApiKey {
	var resp kmsg.ApiVersionsResponse
	appendVersions(&resp, controllerListener)
	return resp.ApiKeys
}

func handleApiVersions(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ApiVersionsRequest)
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	appendVersions(resp, req.conn.controllerPort)
	b.appendFeatures(resp)
	return resp, nil
}

// apiVersionsUnsupported answers an ApiVersions request of a version we do not serve: a v0
// response with UNSUPPORTED_VERSION and the list of versions, so the client can retry lower.
func apiVersionsUnsupported(controllerPort bool) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	appendVersions(resp, controllerPort)
	return resp
}
