//go:build linux

package bpf

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/graygw/graygw/internal/vipindex"
	"github.com/graygw/graygw/pipeline"
)

// TestConstsMatchGo checks include/consts.h against package pipeline and the
// Go constants of this package.
func TestConstsMatchGo(t *testing.T) {
	f, err := os.Open("include/consts.h")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 3 && fs[0] == "#define" {
			if v, err := strconv.ParseInt(strings.TrimSuffix(fs[2], "U"), 0, 64); err == nil {
				c[fs[1]] = v
			}
		}
	}
	want := map[string]int64{
		"VIP_SIZE": pipeline.VIPTableSize, "VNI_TENANT_SIZE": pipeline.VNITenantTableSize,
		"GRAY_RULES_SIZE": pipeline.GrayRulesTableSize, "POOL_HASH_SIZE": pipeline.PoolHashTableSize,
		"BACKEND_SIZE": pipeline.BackendTableSize, "BUCKETS": pipeline.Buckets, "VXLAN_PORT": pipeline.VXLANPort,
		"NUM_DROP_REASONS": pipeline.NumReasons, "MAX_POOLS": MaxPools, "POOL_IDS": PoolIDs, "MAX_MASKS": MaxMasks, "MAX_PORTS": MaxPorts,
		"MAX_MASKS6": MaxMasks6, "TSS6_FILTER_LOG": filter6Log, "PROG_XDP6": progXDP6, "PROG_XDP64": progXDP6 + 1, "VIP_V6_SIZE": VIPV6Size, "GRAY_RULES_V6_SIZE": GrayRulesV6Size,
		"GRAYGW_ABI": ABI, "GRAYGW_MAGIC": magic, "SELECT_VALID": selectValid,
		"ACTION_SET_POOL": int64(SetPool), "ACTION_SPLIT_POOL": int64(SplitPool), "ACTION_SET_POOL_MIRROR": int64(SetPoolMirror),
		"MIRROR_IDS": pipeline.MirrorIDs, "MIRROR_DSCP": pipeline.MirrorDSCP,
		"VIP_INDEX_LOG": vipindex.Log, "VIP_PROBE": vipindex.Probe, "VIP_HASH_MUL": vipindex.HashMul,
	}
	for r := pipeline.Reason(0); r <= pipeline.BackendFamily; r++ {
		want["DROP_"+r.String()] = int64(r)
	}
	for name, v := range want {
		if got, ok := c[name]; !ok || got != v {
			t.Errorf("consts.h %s = %d (defined %v), Go has %d", name, got, ok, v)
		}
	}
	if MaxPools*pipeline.Buckets != pipeline.BackendSelectTableSize {
		t.Errorf("backend_select: %d pools x %d buckets != %d", MaxPools, pipeline.Buckets, pipeline.BackendSelectTableSize)
	}
}
