package startup

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"testing"
)

// parse is a daemon's flag parsing: one --level flag.
func parse(args []string, _ io.Writer) (string, error) {
	fs := flag.NewFlagSet("d", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	level := fs.String("level", "info", "")
	err := fs.Parse(args)
	return *level, err
}

func logger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, errors.New("bad level")
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// TestDaemon: -h exits 0 silently, bad flags or log settings exit 2 saying
// why under the daemon's name, good ones go on with the config and logger.
func TestDaemon(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		ok       bool
		stderr   string
		wantConf string
	}{
		{[]string{"-h"}, ExitHelp, false, "", ""},
		{[]string{"--nope"}, ExitUsage, false, "d: flag provided but not defined: -nope\n", ""},
		{[]string{"--level", "loud"}, ExitUsage, false, "d: bad level\n", ""},
		{[]string{"--level", "warn"}, 0, true, "", "warn"},
	} {
		var stderr bytes.Buffer
		c, log, code, ok := Daemon("d", tc.args, &stderr, parse, logger)
		if code != tc.code || ok != tc.ok || stderr.String() != tc.stderr || (ok && (log == nil || c != tc.wantConf)) {
			t.Errorf("%v: config %q, logger %v, code %d, ok %v, stderr %q", tc.args, c, log, code, ok, stderr.String())
		}
	}
}
