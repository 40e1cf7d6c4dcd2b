// Package startup is the start the graygw daemons share: the command line
// parsed into the daemon's config and its logger made, with the exit codes of
// a start that goes no further.
package startup

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Exit codes of a daemon that does not start.
const (
	ExitHelp  = 0 // -h: the usage was asked for
	ExitUsage = 2 // bad flags, config or log settings
)

// Daemon parses args with parse and makes the daemon's logger with logger.
// When the daemon is not to go on, ok is false and code is its exit code:
// ExitHelp after -h, ExitUsage after saying why on stderr as "name: error".
func Daemon[C any](name string, args []string, stderr io.Writer,
	parse func([]string, io.Writer) (C, error),
	logger func(C, io.Writer) (*slog.Logger, error),
) (c C, log *slog.Logger, code int, ok bool) {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return c, nil, ExitHelp, false
	}
	if err == nil {
		log, err = logger(c, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return c, nil, ExitUsage, false
	}
	return c, log, 0, true
}
