package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// gobgpLogger sends GoBGP's logs to slog with component=gobgp. GoBGP's Info is
// chatty (a line per configuration step), so it goes to slog's Debug and its
// Debug below that; session changes an operator needs are logged by the
// speaker itself (event=bgpSession).
type gobgpLogger struct {
	l *slog.Logger
}

func newGoBGPLogger(l *slog.Logger) *gobgpLogger {
	return &gobgpLogger{l: l.With("component", "gobgp")}
}

func (g *gobgpLogger) log(level slog.Level, msg string, fields gobgplog.Fields) {
	if !g.l.Enabled(context.Background(), level) {
		return
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, fields[k])
	}
	g.l.Log(context.Background(), level, msg, args...)
}

func (g *gobgpLogger) Panic(msg string, fields gobgplog.Fields) {
	g.log(slog.LevelError, msg, fields)
	panic(fmt.Sprintf("gobgp: %s %v", msg, fields))
}

// Fatal keeps GoBGP's contract (the process exits): GoBGP calls it only when
// its gRPC API cannot listen, which the embedded speaker never enables.
func (g *gobgpLogger) Fatal(msg string, fields gobgplog.Fields) {
	g.log(slog.LevelError, msg, fields)
	os.Exit(1)
}

func (g *gobgpLogger) Error(msg string, fields gobgplog.Fields) { g.log(slog.LevelError, msg, fields) }
func (g *gobgpLogger) Warn(msg string, fields gobgplog.Fields)  { g.log(slog.LevelWarn, msg, fields) }
func (g *gobgpLogger) Info(msg string, fields gobgplog.Fields)  { g.log(slog.LevelDebug, msg, fields) }
func (g *gobgpLogger) Debug(msg string, fields gobgplog.Fields) {
	g.log(slog.LevelDebug-4, msg, fields)
}

// SetLevel is ignored: the slog handler decides.
func (g *gobgpLogger) SetLevel(gobgplog.LogLevel) {}

// GetLevel tells GoBGP whether to build its debug messages at all.
func (g *gobgpLogger) GetLevel() gobgplog.LogLevel {
	if g.l.Enabled(context.Background(), slog.LevelDebug-4) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
