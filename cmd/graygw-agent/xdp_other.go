//go:build !linux

package main

import (
	"errors"
	"log/slog"
)

const defaultPinDir = "/sys/fs/bpf/graygw"

var errNoXDP = errors.New("the XDP dataplane needs Linux: use --dataplane memory")

func openXDP(*config, *slog.Logger) (*opened, error) { return nil, errNoXDP }

func detachXDP(*config, *slog.Logger) error { return errNoXDP }
