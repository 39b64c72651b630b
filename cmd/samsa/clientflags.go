package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/cli"
	"github.com/samsa-io/samsa/internal/config"
)

const (
	// dialTimeout bounds each TCP connect (and TLS handshake) to a broker.
	dialTimeout = 5 * time.Second
	// pingTimeout bounds the initial reachability check of the seed brokers.
	pingTimeout = 10 * time.Second
	// adminTimeout bounds a whole topic admin command once the broker is reachable.
	adminTimeout = 60 * time.Second
)

// clientFlags are the connection flags shared by the client subcommands.
type clientFlags struct {
	brokers string
	// commandConfig is a Kafka client properties file (TLS, SASL) as Kafka's tools take it.
	commandConfig string
	// brokersFlag tells whether --brokers was given, which wins over $SAMSA_BROKERS.
	brokersFlag *pflag.Flag
}

// register adds the connection flags to fs.
func (f *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.brokers, "brokers", "", cli.BrokersUsage)
	fs.StringVar(&f.commandConfig, "command-config", "", cli.CommandConfigUsage)
	f.brokersFlag = fs.Lookup("brokers")
}

// connect creates a franz-go client for the configured brokers with opts added, and checks
// that one of the brokers answers so that an unreachable cluster fails fast with a one-line
// message ("cannot reach broker localhost:9092: connection refused") instead of retrying.
func (f *clientFlags) connect(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	brokers, err := cli.ResolveBrokers(f.brokers, f.brokersFlag.Changed, os.Getenv(cli.BrokersEnv))
	if err != nil {
		return nil, err
	}
	all := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("samsa-cli"),
		kgo.DialTimeout(dialTimeout),
	}
	if f.commandConfig != "" {
		file, err := os.Open(f.commandConfig)
		if err != nil {
			return nil, fmt.Errorf("--command-config: %w", err)
		}
		props, err := config.ParseProperties(file)
		file.Close()
		if err != nil {
			return nil, fmt.Errorf("--command-config %s: %w", f.commandConfig, err)
		}
		sec, err := cli.ClientSecurity(props)
		if err != nil {
			return nil, err
		}
		all = append(all, sec...)
	}
	all = append(all, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := cl.Ping(pingCtx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted while connecting: %w", ctx.Err())
		}
		return nil, cli.ReachError(brokers, err)
	}
	return cl, nil
}

// withAdmin runs fn with an admin client, bounded by adminTimeout and interruptible.
func (f *clientFlags) withAdmin(cmd *cobra.Command, fn func(ctx context.Context, adm *kadm.Client) error) error {
	return f.withClient(cmd, func(ctx context.Context, cl *kgo.Client) error {
		return fn(ctx, kadm.NewClient(cl))
	})
}

// withAdminTimeout is withAdmin bounded by limit instead of adminTimeout (a command that
// waits, such as samsa reassign verify --wait), with opts added to the client's.
func (f *clientFlags) withAdminTimeout(cmd *cobra.Command, limit time.Duration, fn func(ctx context.Context, adm *kadm.Client) error, opts ...kgo.Opt) error {
	return f.withClientTimeout(cmd, limit, func(ctx context.Context, cl *kgo.Client) error {
		return fn(ctx, kadm.NewClient(cl))
	}, opts...)
}

// withClient runs fn with a connected client, bounded by adminTimeout and interruptible.
func (f *clientFlags) withClient(cmd *cobra.Command, fn func(ctx context.Context, cl *kgo.Client) error) error {
	return f.withClientTimeout(cmd, adminTimeout, fn)
}

// withClientTimeout runs fn with a connected client, bounded by limit and interruptible.
func (f *clientFlags) withClientTimeout(cmd *cobra.Command, limit time.Duration, fn func(ctx context.Context, cl *kgo.Client) error, opts ...kgo.Opt) error {
	ctx, stop := commandContext(cmd)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cl, err := f.connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, cl)
}

// commandContext returns the command's context, canceled on the first interrupt (Ctrl-C).
func commandContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt)
}

// errNoTopic is wrapped by lookupTopic's error for a topic that does not exist.
var errNoTopic = errors.New("does not exist")

// lookupTopic fetches the metadata of one topic, failing with a clear message when the topic
// does not exist (wrapping errNoTopic) or cannot be described. With a client created with
// kgo.AllowAutoTopicCreation the metadata request asks the broker to create the topic.
func lookupTopic(ctx context.Context, adm *kadm.Client, topic string) (kadm.TopicDetail, error) {
	topics, err := adm.ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, cli.ResponseError("describe topic", topic, err, "")
	}
	td, ok := topics[topic]
	switch {
	case !ok, errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		return kadm.TopicDetail{}, fmt.Errorf("topic %q %w", topic, errNoTopic)
	case td.Err != nil:
		return kadm.TopicDetail{}, cli.ResponseError("describe topic", topic, td.Err, "")
	}
	return td, nil
}

// checkPartition fails unless partition p exists in td.
func checkPartition(td kadm.TopicDetail, p int32) error {
	if _, ok := td.Partitions[p]; !ok {
		return fmt.Errorf("topic %q has no partition %d (it has %d partitions)", td.Topic, p, len(td.Partitions))
	}
	return nil
}
