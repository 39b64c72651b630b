package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ReachError wraps err, returned while trying to talk to any of brokers, as
// "cannot reach broker a:9092,b:9092: <reason>" with a short reason such as
// "connection refused".
func ReachError(brokers []string, err error) error {
	return &reachError{brokers: strings.Join(brokers, ","), err: err}
}

type reachError struct {
	brokers string
	err     error
}

func (e *reachError) Error() string {
	return fmt.Sprintf("cannot reach broker %s: %s", e.brokers, Reason(e.err))
}

func (e *reachError) Unwrap() error { return e.err }

// Reason gives a short, human description of why a network or Kafka request failed: the
// system error for socket failures ("connection refused", "no such host"), "timed out" for
// timeouts, the Kafka error name and text for broker errors, and err's own text otherwise.
func Reason(err error) string {
	var (
		errno  syscall.Errno
		dnsErr *net.DNSError
		kafka  *kerr.Error
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "no such host " + dnsErr.Name
		}
		return dnsErr.Err
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.As(err, &kafka):
		return kafka.Message + ": " + kafka.Description
	}
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return "timed out"
	}
	return err.Error()
}

// ResponseError formats a per-resource error from an admin response, e.g.
// "create topic foo: TOPIC_ALREADY_EXISTS: Topic with this name already exists. (detail)",
// appending the broker's extra message when it adds something (or using it alone when it
// already contains the error's text). The result unwraps to err.
func ResponseError(action, name string, err error, message string) error {
	msg := Reason(err)
	switch {
	case message == "" || strings.Contains(msg, message):
	case strings.Contains(message, msg):
		msg = message // the broker's message already says it all
	default:
		msg += " (" + message + ")"
	}
	return &responseError{text: action + " " + name + ": " + msg, err: err}
}

type responseError struct {
	text string
	err  error
}

func (e *responseError) Error() string { return e.text }
func (e *responseError) Unwrap() error { return e.err }
