package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestReason(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "nil", err: nil, want: ""},
		{name: "refused", err: fmt.Errorf("unable to dial: %w", refused), want: "connection refused"},
		{name: "no such host", err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "nohost", IsNotFound: true}}, want: "no such host nohost"},
		{name: "context deadline", err: fmt.Errorf("ping: %w", context.DeadlineExceeded), want: "timed out"},
		{name: "io deadline", err: &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, want: "timed out"},
		{name: "kafka", err: kerr.TopicAlreadyExists, want: "TOPIC_ALREADY_EXISTS: " + kerr.TopicAlreadyExists.Description},
		{name: "other", err: errors.New("boom"), want: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Reason(tt.err); got != tt.want {
				t.Errorf("Reason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReachError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	err := ReachError([]string{"localhost:9092"}, refused)
	if got, want := err.Error(), "cannot reach broker localhost:9092: connection refused"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Error("ReachError does not unwrap to the cause")
	}
}

func TestResponseError(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		message string
		want    string
	}{
		{name: "plain", err: kerr.UnknownTopicOrPartition, want: "delete topic t: UNKNOWN_TOPIC_OR_PARTITION: " + kerr.UnknownTopicOrPartition.Description},
		{name: "message repeats the error", err: kerr.UnknownTopicOrPartition, message: "UNKNOWN_TOPIC_OR_PARTITION: " + kerr.UnknownTopicOrPartition.Description + ": no topic t",
			want: "delete topic t: UNKNOWN_TOPIC_OR_PARTITION: " + kerr.UnknownTopicOrPartition.Description + ": no topic t"},
		{name: "message is the description", err: kerr.UnknownTopicOrPartition, message: kerr.UnknownTopicOrPartition.Description,
			want: "delete topic t: UNKNOWN_TOPIC_OR_PARTITION: " + kerr.UnknownTopicOrPartition.Description},
		{name: "with message", err: kerr.InvalidConfig, message: "bad value", want: "delete topic t: INVALID_CONFIG: " + kerr.InvalidConfig.Description + " (bad value)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ResponseError("delete topic", "t", tt.err, tt.message)
			if err.Error() != tt.want {
				t.Errorf("got %q, want %q", err.Error(), tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Error("does not unwrap to the cause")
			}
		})
	}
}
