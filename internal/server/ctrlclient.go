package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/samsa-io/samsa/internal/controller"
)

// controllerClient sends Kafka requests to the active controller's controller listener:
// broker registration and heartbeats, ISR changes, and the metadata changes a broker forwards.
// It finds the active controller through this node's member of the Raft quorum, and keeps one
// franz-go client (one connection) to it, replaced when the leader moves.
type controllerClient struct {
	local  *controller.Controller
	logger *slog.Logger
	// voters are the controller listeners of the voters, tried in turn while this node knows
	// no leader (a broker-only node before it registered and joined as a non-voter).
	voters []string
	next   int
	// tls is the client side of an SSL or SASL_SSL controller listener (nil: no TLS), sasl
	// the node's login on a SASL one (nil: none).
	tls  *tls.Config
	sasl sasl.Mechanism

	mu   sync.Mutex
	addr string
	cl   *kgo.Client
}

func newControllerClient(local *controller.Controller, logger *slog.Logger) *controllerClient {
	return &controllerClient{local: local, logger: logger}
}

// retryBackoff is the pause between attempts while no leader is known or it cannot be
// reached.
const retryBackoff = 50 * time.Millisecond

// client returns the franz-go client for the current leader.
func (c *controllerClient) client() (*kgo.Client, error) {
	_, addr, ok := c.local.Leader()
	var candidates []string
	if !ok {
		candidates = c.candidates()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		if len(candidates) == 0 {
			return nil, errNoLeader
		}
		// A voter that is not the leader answers NOT_CONTROLLER; the next attempt tries
		// the next voter.
		addr = candidates[c.next%len(candidates)]
		c.next++
	}
	if c.cl != nil && c.addr == addr {
		return c.cl, nil
	}
	if c.cl != nil {
		c.cl.Close()
		c.cl = nil
	}
	cl, err := kgo.NewClient(controllerClientOpts(addr, c.tls, c.sasl)...)
	if err != nil {
		return nil, err
	}
	c.cl, c.addr = cl, addr
	return cl, nil
}

var errNoLeader = errors.New("no active controller known")

// candidates are the controllers tried in turn while this node knows no leader: the static
// voters or bootstrap servers, then the other voters of the latest Raft configuration this
// node knows, as Kafka's nodes use the voter set of their log too. A voter removed while it
// was down restarts believing itself a voter; the quorum ignores it, and with only its own
// controller listener as bootstrap server it would find no leader: the voters it last knew
// lead it to the active controller, which makes it an observer.
func (c *controllerClient) candidates() []string {
	out := slices.Clone(c.voters)
	for _, v := range c.local.Voters() {
		if !slices.Contains(out, v.Addr) {
			out = append(out, v.Addr)
		}
	}
	return out
}

// controllerClientOpts are the options of a client of the controller listener at addr. Every
// request goes to that one node (Broker.Request), so the client needs no metadata, and a
// controller listener serves no Metadata (as Kafka's). franz-go still refreshes its metadata
// every MetadataMaxAge (5 minutes) and takes a controller's ApiVersions, which lists no
// Produce, for no versions at all, so it would send Metadata there: the listener closes the
// connection on it, and the heartbeats sharing that connection with it, every 5 s from then
// on. Leaving Metadata out of the versions the client may send makes that refresh fail in the
// client, with nothing sent.
func controllerClientOpts(addr string, tlsCfg *tls.Config, mech sasl.Mechanism) []kgo.Opt {
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.Metadata.Int16(), -1)
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("samsa-node"), kgo.DialTimeout(5 * time.Second),
		kgo.RequestRetries(0), kgo.MaxVersions(versions)}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts
}

// request sends req to the active controller and returns its response, retrying while no
// leader is known or the leader cannot be reached, until ctx ends. retry reports, from the
// response, that it came from a node that is no longer the active controller (NOT_CONTROLLER):
// the request is sent again once the leader moved.
func (c *controllerClient) request(ctx context.Context, req kmsg.Request, retry func(kmsg.Response) bool) (kmsg.Response, error) {
	var last error
	for {
		cl, err := c.client()
		if err == nil {
			var resp kmsg.Response
			// A copy per attempt: franz-go sets the version on the request it sends, and an
			// abandoned attempt may still be doing so while the next one runs.
			resp, err = cl.SeedBrokers()[0].Request(ctx, shallowCopy(req))
			if err == nil && (retry == nil || !retry(resp)) {
				return resp, nil
			}
			if err == nil {
				err = kerr.NotController
			} else {
				c.drop(cl)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: sending %s to the active controller: %w", kerr.RequestTimedOut, kmsg.NameForKey(req.Key()), last)
		case <-time.After(retryBackoff):
		}
	}
}

// drop forgets a client whose connection failed, so the next attempt dials again.
func (c *controllerClient) drop(cl *kgo.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cl == cl {
		c.cl.Close()
		c.cl, c.addr = nil, ""
	}
}

func (c *controllerClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cl != nil {
		c.cl.Close()
		c.cl = nil
	}
}

// shallowCopy returns a copy of the request struct req points to.
func shallowCopy(req kmsg.Request) kmsg.Request {
	v := reflect.ValueOf(req)
	if v.Kind() != reflect.Pointer {
		return req
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	return c.Interface().(kmsg.Request)
}
