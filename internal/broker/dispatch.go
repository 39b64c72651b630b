package broker

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/wire"
)

// handlerFunc answers one request. A nil response sends nothing (acks=0 produce); an error
// closes the connection.
type handlerFunc func(b *Broker, req *request) (kmsg.Response, error)

// api is one served Kafka API: the versions served and the handler. Each API registers itself
// from its own file, so ApiVersions is derived from what is registered.
type api struct {
	key      int16
	min, max int16
	handle   handlerFunc
}

var apis = map[int16]*api{}

// register declares an API served by the broker. It is called from init functions.
func register(key, min, max int16, h handlerFunc) {
	if k := kmsg.RequestForKey(key); k == nil || max > k.MaxVersion() {
		panic(fmt.Sprintf("broker: API %d v%d is not known to kmsg", key, max))
	}
	apis[key] = &api{key: key, min: min, max: max, handle: h}
}

// servedAPIs returns the registered APIs sorted by key.
func servedAPIs() []*api {
	out := make([]*api, 0, len(apis))
	for _, a := range apis {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// errUnsupported marks a request whose key or version is not served.
type errUnsupported struct{ key, version int16 }

func (e errUnsupported) Error() string {
	return fmt.Sprintf("unsupported API key %d version %d", e.key, e.version)
}

// decode parses a frame's header and body. ApiVersions at an unsupported version is let
// through (it is answered with UNSUPPORTED_VERSION and the version list); any other unknown key
// or version is an error that closes the connection, as Kafka does.
func (c *conn) decode(frame []byte) (*request, error) {
	hdr, body, err := wire.ParseRequestHeader(frame)
	if err != nil {
		return nil, err
	}
	a := apis[hdr.Key]
	if a == nil || !servedOn(hdr.Key, c.controllerPort) {
		return nil, errUnsupported{hdr.Key, hdr.Version}
	}
	if hdr.Version < a.min || hdr.Version > a.max {
		if hdr.Key == kmsg.ApiVersions.Int16() {
			return &request{hdr: hdr, conn: c}, nil
		}
		return nil, errUnsupported{hdr.Key, hdr.Version}
	}
	kreq := kmsg.RequestForKey(hdr.Key)
	kreq.SetVersion(hdr.Version)
	if err := kreq.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s v%d: %w", kmsg.NameForKey(hdr.Key), hdr.Version, err)
	}
	return &request{hdr: hdr, kreq: kreq, conn: c}, nil
}

func (b *Broker) dispatch(req *request) (kmsg.Response, error) {
	a := apis[req.hdr.Key]
	if err := req.conn.checkAuthenticated(req.hdr, req.arrived); err != nil {
		return nil, err
	}
	if req.kreq == nil { // ApiVersions at a version we do not serve
		return apiVersionsUnsupported(req.conn.controllerPort), nil
	}
	if b.authorizer != nil {
		if resp, err, refused := b.dispatchAuthorize(req); refused {
			return resp, err
		}
	}
	started := time.Now()
	resp, err := a.handle(b, req)
	if err == nil {
		b.applyThrottle(req, resp, time.Since(started))
		if req.conn.controllerPort {
			// A broker that forwarded a metadata change waits for its image to reach this.
			wire.SetMetadataIndex(resp, b.ctrl.Image().Index)
		}
	}
	return resp, err
}

// errCode returns the Kafka error code of err (0 for nil, UNKNOWN_SERVER_ERROR for errors that
// carry no Kafka code).
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errMessage is the error message of a response: what Samsa says about this case, once. The
// generic text of the Kafka error code that err wraps ("INVALID_PARTITIONS: Number of
// partitions is below 1.: ...") is left out, as Kafka sends only the specific message and
// clients print the code's own text beside it. A bare Kafka error gives its description.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	var ke *kerr.Error
	if errors.As(err, &ke) {
		if err == error(ke) {
			s = ke.Description
		} else {
			s = strings.TrimPrefix(s, ke.Error()+": ")
		}
	}
	return &s
}
