package controller

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter forwards hashicorp/raft's hclog output to slog. Only Warn and Error are
// forwarded: raft is chatty at Info and below, and its progress is not news to an operator.
type hclogAdapter struct {
	logger *slog.Logger
	name   string
	args   []any
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(l *slog.Logger, name string) *hclogAdapter {
	return &hclogAdapter{logger: l, name: name}
}

// Log implements hclog.Logger.
func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	var lvl slog.Level
	switch level {
	case hclog.Warn:
		if isFirstElection(msg, args) {
			return
		}
		lvl = slog.LevelWarn
	case hclog.Error:
		lvl = slog.LevelError
	default:
		return
	}
	all := make([]any, 0, len(a.args)+len(args)+2)
	if a.name != "" {
		all = append(all, "component", a.name)
	}
	all = append(all, a.args...)
	all = append(all, args...)
	a.logger.Log(context.Background(), lvl, msg, all...)
}

// isFirstElection reports whether a warning is raft announcing the election every node holds
// when it starts without having heard from a leader: routine, not worth a warning.
func isFirstElection(msg string, args []any) bool {
	if msg != "heartbeat timeout reached, starting election" {
		return false
	}
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k == "last-leader-id" {
			return fmt.Sprint(args[i+1]) == ""
		}
	}
	return false
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) IsTrace() bool { return false }
func (a *hclogAdapter) IsDebug() bool { return false }
func (a *hclogAdapter) IsInfo() bool  { return false }
func (a *hclogAdapter) IsWarn() bool  { return true }
func (a *hclogAdapter) IsError() bool { return true }

func (a *hclogAdapter) ImpliedArgs() []any { return a.args }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.args = append(append([]any(nil), a.args...), args...)
	return &c
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel is ignored: the adapter always forwards Warn and above.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level { return hclog.Warn }

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return stdWriter{a}
}

// stdWriter turns standard-library log lines of the form "[WARN] msg" into adapter calls.
type stdWriter struct{ a *hclogAdapter }

func (w stdWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	switch {
	case strings.HasPrefix(line, "[ERR"):
		w.a.Error(strings.TrimSpace(line[strings.IndexByte(line, ']')+1:]))
	case strings.HasPrefix(line, "[WARN"):
		w.a.Warn(strings.TrimSpace(line[strings.IndexByte(line, ']')+1:]))
	}
	return len(p), nil
}
