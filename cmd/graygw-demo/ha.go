package main

// --ha: three controller replicas on a 3-member etcd cluster (docs/ha.md).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/graygw/graygw/internal/lab"
)

// haReplicas is how many controller replicas --ha runs, on as many etcd
// members.
const haReplicas = 3

// etcdClient and etcdPeer are member i's loopback URLs in the gateway's
// namespace (its own loopback: nothing else listens there).
func etcdClient(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", 23790+i) }
func etcdPeer(i int) string   { return fmt.Sprintf("http://127.0.0.1:%d", 23800+i) }

// replicaID names controller replica i (1-based).
func replicaID(i int) string { return fmt.Sprintf("ctl-%d", i) }

// replicaSock is controller replica i's API socket.
func (d *demo) replicaSock(i int) string { return filepath.Join(d.dir, replicaID(i)+".sock") }

// startEtcd starts the cluster in the gateway's namespace (Debian's
// etcd-server, as internal/etcdlab runs it) and waits until every member
// serves; the processes are the lab's, killed by its Close.
func (d *demo) startEtcd(ctx context.Context) ([]*exec.Cmd, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, fmt.Errorf("--ha needs etcd (apt-get install etcd-server): %w", err)
	}
	var initial []string
	for i := 1; i <= haReplicas; i++ {
		initial = append(initial, fmt.Sprintf("m%d=%s", i, etcdPeer(i)))
	}
	var cmds []*exec.Cmd
	var logs []string
	for i := 1; i <= haReplicas; i++ {
		f, err := d.logFile(fmt.Sprintf("etcd-m%d", i))
		if err != nil {
			return cmds, err
		}
		cmd, err := d.l.Start(d.t.GW, f, bin, "--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(d.dir, fmt.Sprintf("etcd-m%d", i)),
			"--listen-client-urls", etcdClient(i), "--advertise-client-urls", etcdClient(i),
			"--listen-peer-urls", etcdPeer(i), "--initial-advertise-peer-urls", etcdPeer(i),
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "graygw-demo", "--heartbeat-interval", "50", "--election-timeout", "500",
			"--logger", "zap", "--log-level", "info")
		f.Close()
		if err != nil {
			return cmds, err
		}
		cmds = append(cmds, cmd)
		logs = append(logs, f.Name())
	}
	for _, log := range logs {
		err := waitFor(ctx, 30*time.Second, "etcd member "+filepath.Base(log), func() error {
			b, _ := os.ReadFile(log)
			if !strings.Contains(string(b), "serving client traffic") { // etcd 3.4: "serving client traffic insecurely"
				return fmt.Errorf("not serving yet (log %s)", log)
			}
			return nil
		})
		if err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}

// haConfig is replica i's config: the demo controller's, with its store on
// the etcd cluster, an ha: section, and its own API socket and metrics port.
func (d *demo) haConfig(intent string, i int) string {
	var eps []string
	for m := 1; m <= haReplicas; m++ {
		eps = append(eps, etcdClient(m))
	}
	text := d.controllerConfig(intent)
	text = strings.Replace(text, "store: "+filepath.Join(d.dir, "controller.db")+"\n",
		fmt.Sprintf("store:\n  etcd: {endpoints: [%s], prefix: /graygw-demo/}\nha: {id: %s, ttl: 2s}\n", strings.Join(eps, ", "), replicaID(i)), 1)
	text = strings.Replace(text, "unix: "+d.sock()+"\n", "unix: "+d.replicaSock(i)+"\n", 1)
	text = strings.Replace(text, "metrics: "+MetricsAddr+"\n", fmt.Sprintf("metrics: 127.0.0.1:%d\n", 9464+i), 1)
	return text
}

// startReplicas starts the etcd cluster and the controller replicas: the
// first alone, so that it leads, then the others, which stand by warm. The
// CLI is then pointed at a follower (replica 2): every change the demo makes
// goes through it to the leader.
func (d *demo) startReplicas(ctx context.Context, intent string) ([]*exec.Cmd, error) {
	etcd, err := d.startEtcd(ctx)
	if err != nil {
		return etcd, err
	}
	fmt.Printf("   etcd: %d members in namespace %s (%s ...)\n", haReplicas, d.t.GW, etcdClient(1))
	procs := etcd
	for i := 1; i <= haReplicas; i++ {
		cfg, err := d.write(replicaID(i)+".yaml", d.haConfig(intent, i))
		if err != nil {
			return procs, err
		}
		log, err := d.logFile(replicaID(i))
		if err != nil {
			return procs, err
		}
		cmd, err := d.l.Start(d.t.GW, log, filepath.Join(d.bin, "graygw-controller"), "--config", cfg)
		log.Close()
		if err != nil {
			return procs, err
		}
		procs = append(procs, cmd)
		d.replicas = append(d.replicas, cmd)
		err = waitFor(ctx, 30*time.Second, replicaID(i)+" API", func() error {
			_, err := os.Stat(d.replicaSock(i))
			return err
		})
		if err != nil {
			return procs, err
		}
		if i == 1 {
			d.cliSock = d.replicaSock(1)
			if err := waitFor(ctx, 30*time.Second, "gateway in sync", d.inSync); err != nil {
				return procs, err
			}
		}
	}
	d.cliSock = d.replicaSock(2)
	fmt.Printf("   %s leads; %s and %s stand by warm. The CLI talks to %s, a follower: it answers reads and sends the rest to the leader\n",
		replicaID(1), replicaID(2), replicaID(3), replicaID(2))
	return procs, nil
}

// failover SIGKILLs the leading replica (replica 1) and waits until another
// leads with the gateway in sync, then shows the status.
func (d *demo) failover(ctx context.Context) error {
	leader := d.replicas[0]
	start := time.Now()
	if err := syscall.Kill(-leader.Process.Pid, syscall.SIGKILL); err != nil {
		return err
	}
	_ = leader.Wait()
	// The CLI's socket is replica 2's, which may be the one elected: the
	// status answers once a leader is in sync.
	if err := waitFor(ctx, 30*time.Second, "another replica leading, in sync", func() error {
		if err := d.inSync(); err != nil {
			return err
		}
		return d.leaderIsNot(replicaID(1))
	}); err != nil {
		return err
	}
	fmt.Printf("   %s SIGKILLed: another replica leads with the gateway in sync %s later (lease 2s)\n", replicaID(1),
		time.Since(start).Round(100*time.Millisecond))
	return nil
}

// stopReplicas stops the replicas still running (SIGTERM: each drains; the
// leader resigns).
func (d *demo) stopReplicas() {
	for _, c := range d.replicas {
		if c.ProcessState == nil {
			_ = lab.Stop(c, syscall.SIGTERM, 10*time.Second)
		}
	}
}
