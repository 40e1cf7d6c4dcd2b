// Package lab builds throw-away network labs out of Linux network namespaces and veth
// pairs for graygw's end-to-end tests and demo. Everything it creates carries a
// unique prefix and is removed by Close: namespaces (and the links inside them),
// processes it started (killed by PID). It shells out to iproute2 on purpose: what
// it does is then exactly what an operator would type.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotRoot is returned by New when the process cannot create namespaces.
var ErrNotRoot = errors.New("lab: network namespaces need root")

// Lab is a set of namespaces and processes with a common name prefix.
type Lab struct {
	Prefix string

	mu    sync.Mutex
	netns []string
	procs []*exec.Cmd
}

// New returns an empty lab whose namespace names start with prefix and a short
// unique suffix, so parallel runs and leftovers of a crashed run never collide.
func New(prefix string) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("lab: iproute2 missing: %w", err)
	}
	return &Lab{Prefix: fmt.Sprintf("%s%x-", prefix, os.Getpid()&0xffff)}, nil
}

// NS creates a namespace and returns its full name. Loopback is brought up.
func (l *Lab) NS(name string) (string, error) {
	full := l.Prefix + name
	if _, err := run("ip", "netns", "add", full); err != nil {
		return "", err
	}
	l.mu.Lock()
	l.netns = append(l.netns, full)
	l.mu.Unlock()
	_, err := l.Exec(full, "ip", "link", "set", "lo", "up")
	return full, err
}

// Veth creates a veth pair with one end in each namespace, both up.
func (l *Lab) Veth(nsA, ifA, nsB, ifB string) error {
	if _, err := run("ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		return err
	}
	if _, err := l.Exec(nsA, "ip", "link", "set", ifA, "up"); err != nil {
		return err
	}
	_, err := l.Exec(nsB, "ip", "link", "set", ifB, "up")
	return err
}

// Exec runs a command inside ns and returns its combined output.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	return run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Script runs each line of script (iproute2 commands, one per line, no shell)
// inside ns, stopping at the first error.
func (l *Lab) Script(ns, script string) error {
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := l.Exec(ns, strings.Fields(line)...); err != nil {
			return err
		}
	}
	return nil
}

// MAC returns the MAC address of dev in ns.
func (l *Lab) MAC(ns, dev string) (string, error) {
	out, err := l.Exec(ns, "cat", "/sys/class/net/"+dev+"/address")
	return strings.TrimSpace(out), err
}

// Start starts a long-running command inside ns; Close kills it. Its output goes
// to logw when not nil.
func (l *Lab) Start(ns string, logw *os.File, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = logw, logw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %v: %w", args, err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.mu.Unlock()
	return cmd, nil
}

// Stop signals a process started by Start (its whole process group) and waits up
// to timeout for it to exit before killing it.
func Stop(cmd *exec.Cmd, sig syscall.Signal, timeout time.Duration) error {
	if cmd.Process == nil {
		return nil
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return <-done
	}
}

// Close kills the processes the lab started and deletes its namespaces.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs, netns := l.procs, l.netns
	l.procs, l.netns = nil, nil
	l.mu.Unlock()
	for _, p := range procs {
		if p.ProcessState == nil && p.Process != nil {
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			_ = p.Wait()
		}
	}
	var errs []error
	for i := len(netns) - 1; i >= 0; i-- {
		if _, err := run("ip", "netns", "del", netns[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("lab: %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}
