package health

import (
	"errors"
	"fmt"
	"time"
)

// Modes of a check.
const (
	// ModeICMP sends one ICMP echo request to the backend's underlay address
	// per check, from a raw socket (root, or CAP_NET_RAW).
	ModeICMP = "icmp"
	// ModeTCP opens a TCP connection to the backend's underlay address and
	// Config.Port per check, and closes it once connected.
	ModeTCP = "tcp"
)

// Defaults of Config.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = 500 * time.Millisecond
	DefaultRise     = 2
	DefaultFall     = 3
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("health: invalid config")

// Config is how backends are checked.
type Config struct {
	// Interval between two checks of a backend (DefaultInterval when 0).
	Interval time.Duration
	// Timeout bounds one check (DefaultTimeout when 0); at most Interval.
	Timeout time.Duration
	// Rise is how many checks in a row must succeed for a down backend to be
	// up again (DefaultRise when 0).
	Rise int
	// Fall is how many checks in a row must fail for an up backend to be down
	// (DefaultFall when 0).
	Fall int
	// Mode is ModeICMP (the default when empty) or ModeTCP.
	Mode string
	// Port is the TCP port of ModeTCP; refused with ModeICMP.
	Port int
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = min(DefaultTimeout, c.Interval)
	}
	if c.Rise == 0 {
		c.Rise = DefaultRise
	}
	if c.Fall == 0 {
		c.Fall = DefaultFall
	}
	if c.Mode == "" {
		c.Mode = ModeICMP
	}
	return c
}

// Validate applies the defaults and reports every problem, each naming its
// field (interval, timeout, rise, fall, mode, port) and wrapping
// ErrInvalidConfig.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.Interval < 0 {
		bad("interval", "%s is negative", c.Interval)
	} else if c.Interval < 10*time.Millisecond {
		bad("interval", "%s is below 10ms", c.Interval)
	}
	switch {
	case c.Timeout < 0:
		bad("timeout", "%s is negative", c.Timeout)
	case c.Timeout < time.Millisecond:
		bad("timeout", "%s is below 1ms", c.Timeout)
	case c.Timeout > c.Interval && c.Interval > 0:
		bad("timeout", "%s is longer than interval %s (a check must end before the next one)", c.Timeout, c.Interval)
	}
	if c.Rise < 0 || c.Rise > 100 {
		bad("rise", "%d: want 1..100", c.Rise)
	}
	if c.Fall < 0 || c.Fall > 100 {
		bad("fall", "%d: want 1..100", c.Fall)
	}
	switch c.Mode {
	case ModeICMP:
		if c.Port != 0 {
			bad("port", "%d: applies to mode %s only (mode is %s)", c.Port, ModeTCP, ModeICMP)
		}
	case ModeTCP:
		if c.Port < 1 || c.Port > 65535 {
			bad("port", "%d: mode %s needs a port 1..65535", c.Port, ModeTCP)
		}
	default:
		bad("mode", "%q: want %s or %s", c.Mode, ModeICMP, ModeTCP)
	}
	return errors.Join(errs...)
}
