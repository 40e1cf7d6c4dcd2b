//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Timing harness for BPF_PROG_TEST_RUN with a large repeat count. The kernel
 * reuses one buffer for every repetition, so a program that rewrites the frame
 * would see its own output from the second run on. bench_wrapper restores the
 * original frame before tail-calling the program under test; its own cost is
 * measured by pointing it at bench_minimal. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#define FRAME_MAX 512

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct frame {
	__u32 len;
	__u8 data[FRAME_MAX];
};

/* bench_frame: key 0 -> the frame every repetition starts from. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct frame);
	__uint(max_entries, 1);
} bench_frame SEC(".maps");

/* bench_target: key 0 -> the program under test. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} bench_target SEC(".maps");

SEC("xdp")
int bench_wrapper(struct xdp_md *ctx)
{
	__u32 zero = 0, len, cur;
	struct frame *f = bpf_map_lookup_elem(&bench_frame, &zero);

	if (!f)
		return XDP_ABORTED;
	len = f->len;
	if (len < ETH_HLEN || len > FRAME_MAX)
		return XDP_ABORTED;
	/* A run that moved the head (graygw_xdp's mirror prefix) moves it back:
	 * repetitions share one buffer. */
	cur = (long)ctx->data_end - (long)ctx->data;
	if (cur != len && bpf_xdp_adjust_head(ctx, (int)(cur - len)))
		return XDP_ABORTED;
	if (bpf_xdp_store_bytes(ctx, 0, f->data, len))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED;
}

/* bench_minimal is the reference: swap the MACs and send back. */
SEC("xdp")
int bench_minimal(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}
