// Package broker owns Kafka client connections and the request handlers: it reads frames,
// dispatches each request to the handler registered for its API key (one file per API or API
// family), and writes responses in order per connection. It reads cluster state from the
// controller's metadata image and hosts partitions through the replica manager.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/group"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/metrics"
	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/txn"
)

// connBurst is how many connections must have closed (and at least half of those open at
// the peak) for the broker to give freed memory back to the OS at once.
const connBurst = 1000

// Controller is what the broker needs from the metadata quorum: the current image and the
// operations that change it. *controller.Controller implements it; the cluster wiring
// (package server) and tests may put something else in front of it.
type Controller interface {
	Image() *metadata.Image
	CreateTopics(ctx context.Context, reqs []controller.CreateTopic, validateOnly bool) []controller.TopicResult
	DeleteTopics(ctx context.Context, names []string, ids [][16]byte) []controller.DeleteResult
	CreatePartitions(ctx context.Context, topic string, count int32, assignment [][]int32, validateOnly bool) error
	AlterConfigs(ctx context.Context, resourceType int8, name string, set map[string]string, del []string, validateOnly bool) error
	UpdateFeatures(ctx context.Context, updates []controller.FeatureUpdate, validateOnly bool) error
	AllocateProducerIDs(ctx context.Context, count int) (first int64, err error)
	AlterUserScramCredentials(ctx context.Context, dels []controller.ScramDeletion, ups []controller.ScramUpsertion) []controller.ScramResult
	CreateAcls(ctx context.Context, bindings []acl.Binding) []error
	DeleteAcls(ctx context.Context, filters []acl.Filter) []controller.ACLDeleteResult
	AlterClientQuotas(ctx context.Context, alts []controller.QuotaAlteration, validateOnly bool) []controller.QuotaResult
	CreateDelegationToken(ctx context.Context, req controller.TokenCreation) (metadata.DelegationToken, error)
	RenewDelegationToken(ctx context.Context, mac []byte, principal string, periodMs int64) (int64, error)
	ExpireDelegationToken(ctx context.Context, mac []byte, principal string, periodMs int64) (int64, error)
}

var _ Controller = (*controller.Controller)(nil)

// Broker serves Kafka clients on its listeners.
type Broker struct {
	cfg  *config.Server
	log  *slog.Logger
	ctrl Controller
	// tokenCreds are the SCRAM credentials derived for delegation tokens (dtokens.go).
	tokenCreds tokenCredentials
	// quorum is the node's member of the metadata quorum (SetQuorum); nil in tests that
	// build a broker without one.
	quorum   Quorum
	replicas *replica.Manager
	// advertised are the listeners published in Metadata, by listener name.
	advertised  map[string]config.Listener
	idleTimeout time.Duration
	// requestReadTimeout bounds the time from a request frame's first byte to its last
	// (samsa.request.read.timeout.ms).
	requestReadTimeout time.Duration
	// budget bounds the bytes of request frames held across connections
	// (queued.max.request.bytes).
	budget *requestBudget
	// partitionSizeLimit is max.request.partition.size.limit: the most partitions one
	// DescribeTopicPartitions response describes.
	partitionSizeLimit int32
	// topicDefaults are the topic config values given by the static broker settings.
	topicDefaults map[string]config.TopicDefault
	now           func() time.Time

	pids producerIDs
	// authorizer decides requests with the ACLs of the image (authorizer.class.name); nil, every
	// principal may do everything (authorize.go).
	authorizer *acl.Authorizer
	acls       atomic.Pointer[aclCache]
	// sendfile sends fetched records from segment files with sendfile(2) on plain TCP
	// connections (SAMSA_SENDFILE=0 turns it off, to compare).
	sendfile bool
	// txnVerifier admits transactional produce (the transaction coordinator); nil refuses it
	// (txn_markers.go).
	txnVerifier TxnVerifier
	// groups is the group coordinator (consumer groups and committed offsets).
	groups *group.Coordinator
	// txns is the transaction coordinator (txn.go).
	txns *txn.Coordinator
	// peers are the inter-broker clients of the transaction coordinator (txn_remote.go).
	peers brokerClients
	// fetchSessions are the incremental fetch sessions (KIP-227).
	fetchSessions *fetchSessionCache
	// security is how each listener's connections are secured (TLS, SASL), by listener name
	// (ConfigureSecurity; a listener missing from it is plain).
	security map[string]*listenerSecurity
	// principalMappers are the TLS listeners' ssl.principal.mapping.rules other than DEFAULT,
	// by listener name (ConfigurePrincipalMapping).
	principalMappers map[string]*auth.SSLPrincipalMapper
	// authFailureDelay is connection.failed.authentication.delay.ms.
	authFailureDelay time.Duration
	// quotas enforces client quotas (quotas_enforce.go).
	quotas *clientQuotas
	// connLimits are the connection limits of the client listeners (conn_limits.go).
	connLimits *connLimits
	// interBrokerOpts are the TLS/SASL options of the clients of other brokers (txn_remote.go),
	// for the inter-broker listener (SetInterBrokerClientOpts).
	interBrokerOpts []kgo.Opt
	// metrics are the request-path metrics (metrics.go); nil when samsa.metrics.address is
	// empty.
	metrics *metrics.Broker

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		listeners []net.Listener
		conns     map[*conn]struct{}
		// connsPeak is the most connections open since memory was last given back to the OS.
		connsPeak int
	}
}

// New returns a broker that serves with the given controller and replica manager.
func New(cfg *config.Server, ctrl Controller, replicas *replica.Manager, logger *slog.Logger) *Broker {
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg:           cfg,
		log:           logger,
		ctrl:          ctrl,
		replicas:      replicas,
		advertised:    make(map[string]config.Listener),
		now:           time.Now,
		topicDefaults: cfg.TopicDefaults(),
		ctx:           ctx,
		cancel:        cancel,
	}
	b.idleTimeout = time.Duration(cfg.Int64("connections.max.idle.ms")) * time.Millisecond
	b.requestReadTimeout = time.Duration(cfg.Int64("samsa.request.read.timeout.ms")) * time.Millisecond
	b.partitionSizeLimit = int32(cfg.Int64("max.request.partition.size.limit"))
	b.budget = newRequestBudget(cfg.QueuedMaxRequestBytes)
	// Client quotas are read from the current metadata image (ClientQuotaRecords).
	b.quotas = newClientQuotas(cfg, quota.SourceFunc(func() *quota.Table { return ctrl.Image().ClientQuotas() }))
	b.connLimits = newConnLimits(cfg, b.quotas.window, b.quotas.table, logger.Info)
	b.connLimits.hosts = newHostQuotas(ctx, logger.Info)
	b.mu.conns = make(map[*conn]struct{})
	b.sendfile = os.Getenv("SAMSA_SENDFILE") != "0"
	b.groups = newGroupCoordinator(b)
	b.txns = newTxnCoordinator(b)
	b.txnVerifier = coordinatorVerifier{b}
	b.fetchSessions = newFetchSessionCache(int(cfg.Int64("max.incremental.fetch.session.cache.slots")), fetchSessionIdle)
	if cfg.AuthorizerEnabled() {
		superUsers, _ := cfg.Value("super.users")
		b.authorizer = &acl.Authorizer{SuperUsers: acl.ParseSuperUsers(superUsers), AllowEveryoneIfNoACL: cfg.Bool("allow.everyone.if.no.acl.found")}
	}
	return b
}

// Serve accepts connections on ln for listener l until the broker closes. The advertised
// address of l is its configured advertised listener, else its bound address.
func (b *Broker) Serve(ln net.Listener, l config.Listener) {
	b.mu.Lock()
	b.mu.listeners = append(b.mu.listeners, ln)
	b.mu.Unlock()
	var connMetrics *metrics.ListenerConns
	if b.metrics != nil {
		connMetrics = b.metrics.Listener(l.Name)
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) || b.ctx.Err() != nil {
					return
				}
				b.log.Warn("accept failed", "listener", l.Name, "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			limited := l.Name != b.cfg.ControllerListener
			if limited && !b.admitConn(nc, l.Name) {
				continue // refused, or the broker is closing (the next Accept fails)
			}
			ip := remoteIP(nc)
			if tc, ok := nc.(*net.TCPConn); ok {
				tc.SetNoDelay(true)
			}
			sec := b.security[l.Name]
			// (the controller listener's TLS, if any, is the controller's: its connections
			// come here after their handshake)
			var batch *tlsWriteBatcher
			if sec != nil && sec.tls != nil && l.Name != b.cfg.ControllerListener {
				batch = &tlsWriteBatcher{Conn: nc}
				nc = tls.Server(batch, sec.tls) // the handshake runs in the connection's goroutine
			}
			c := b.newConn(nc, l.Name)
			c.sec = sec
			c.tlsBatch = batch
			b.mu.Lock()
			if b.ctx.Err() != nil { // Close has closed the connections it knew of
				b.mu.Unlock()
				nc.Close()
				c.cancel()
				if limited {
					b.connLimits.release(l.Name, ip)
				}
				return
			}
			b.mu.conns[c] = struct{}{}
			b.mu.connsPeak = max(b.mu.connsPeak, len(b.mu.conns))
			b.mu.Unlock()
			if connMetrics != nil {
				connMetrics.Opened()
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				c.serve()
				if limited {
					b.connLimits.release(l.Name, ip)
				}
				b.connectionEnded(c)
				if connMetrics != nil {
					connMetrics.Closed()
				}
				b.mu.Lock()
				delete(b.mu.conns, c)
				open := len(b.mu.conns)
				burstOver := b.mu.connsPeak-open >= connBurst && open <= b.mu.connsPeak/2
				if burstOver {
					b.mu.connsPeak = open
				}
				b.mu.Unlock()
				if burstOver {
					// The memory of a burst of connections (goroutine stacks, buffers) is free
					// now; give it back to the OS rather than wait for the scavenger.
					debug.FreeOSMemory()
				}
			}()
		}
	}()
}

// SetInterBrokerClientOpts sets the security options of the broker's clients of other brokers
// (before Serve).
func (b *Broker) SetInterBrokerClientOpts(opts []kgo.Opt) { b.interBrokerOpts = opts }

// SetAdvertised records the address published for a listener.
func (b *Broker) SetAdvertised(l config.Listener) { b.advertised[l.Name] = l }

// Close stops accepting, closes every connection and waits for their goroutines.
func (b *Broker) Close() {
	b.cancel()
	b.mu.Lock()
	for _, ln := range b.mu.listeners {
		ln.Close()
	}
	for c := range b.mu.conns {
		c.nc.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	b.groups.Close()
	b.txns.Close()
	b.closePeers()
}

// awaitMetadata waits until the replica manager has applied the controller's latest image, so
// that a request following a topic change (produce right after CreateTopics, say) finds the
// partitions open, as Kafka's clients expect once the admin call has returned.
func (b *Broker) awaitMetadata(req *request) {
	ctx, cancel := context.WithTimeout(req.conn.ctx, 10*time.Second)
	defer cancel()
	if err := b.replicas.WaitApplied(ctx, b.ctrl.Image().Index); err != nil && b.ctx.Err() == nil {
		b.log.Warn("metadata not applied in time", "err", err)
	}
}
