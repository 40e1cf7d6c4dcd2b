// Package bpf is graygw's XDP dataplane: the pipeline of docs/pipeline.md
// compiled from graygw.c, its loader (pinned maps, per-interface attach) and a
// typed API over its tables and counters for the P4Runtime agent. See
// docs/xdp.md for the map layout and the ordering rules writers follow.
package bpf
