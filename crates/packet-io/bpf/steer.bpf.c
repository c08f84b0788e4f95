// SPDX-License-Identifier: (MIT OR Apache-2.0) AND GPL-2.0
//
// mtcp-rs flow steering (XDP).
//
// Redirects to the AF_XDP socket of the receiving queue only the frames that
// belong to the user-level stack and passes everything else to the kernel, so
// that the kernel and other applications keep working on the same interface:
//
//   * ARP whose target protocol address is the configured IPv4 address;
//   * IPv4 TCP (and UDP when STEER_UDP is set) to the configured address,
//     optionally only to the destination ports in the port bitmap;
//   * IPv4 ICMP to the configured address when STEER_ICMP is set (echo
//     requests and the errors that quote our segments; ICMP has no ports,
//     so the port bitmap does not apply and every fragment is steered).
//
// The configuration lives in maps written by user space before the sockets are
// inserted into `xsks`:
//   cfg[0]   struct steer_cfg (address in network byte order, flags)
//   ports[k] bit (p & 63) of word k = p >> 6 is set when port p is steered
//   xsks[q]  the AF_XDP socket of rx queue q
//   stats    per-CPU counters (see enum stat)
//
// Built with `clang -target bpf` against the kernel uapi headers only.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)BPF_FUNC_redirect_map;

#define STEER_ALL_PORTS 1u /* ignore the port bitmap */
#define STEER_UDP 2u       /* steer UDP as well as TCP */
#define STEER_ENABLED 4u   /* the configuration has been written */
#define STEER_ICMP 8u      /* steer ICMP to the address as well */

struct steer_cfg {
	__u32 addr;  /* IPv4 address, network byte order */
	__u32 flags; /* STEER_* */
};

enum stat {
	STAT_REDIRECT_ARP = 0,
	STAT_REDIRECT_IP = 1,
	STAT_PASS = 2,
	STAT_NO_SOCKET = 3,
	STAT_MAX = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_cfg);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* ARP for IPv4 over Ethernet (RFC 826); declared here because
 * <linux/if_arp.h> drags in libc headers. */
#define ARPHRD_ETHER 1
struct arphdr {
	__be16 ar_hrd;
	__be16 ar_pro;
	unsigned char ar_hln;
	unsigned char ar_pln;
	__be16 ar_op;
};

struct arp_ipv4 {
	unsigned char sha[ETH_ALEN];
	unsigned char spa[4];
	unsigned char tha[ETH_ALEN];
	unsigned char tpa[4];
} __attribute__((packed));

static __always_inline void count(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &i);
	if (c)
		*c += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline int port_steered(const struct steer_cfg *c, __u16 port_be)
{
	if (c->flags & STEER_ALL_PORTS)
		return 1;
	__u16 port = __builtin_bswap16(port_be);
	__u32 word = port >> 6;
	__u64 *bits = bpf_map_lookup_elem(&ports, &word);
	return bits && ((*bits >> (port & 63)) & 1);
}

static __always_inline int redirect(struct xdp_md *ctx, __u32 stat)
{
	count(stat);
	/* Fall back to the kernel when no socket is bound on this queue. */
	long action = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	if (action == XDP_PASS)
		count(STAT_NO_SOCKET);
	return action;
}

SEC("xdp")
int mtcp_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct steer_cfg *c = bpf_map_lookup_elem(&cfg, &zero);
	if (!c || !(c->flags & STEER_ENABLED))
		goto pass;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		goto pass;

	if (eth->h_proto == __builtin_bswap16(ETH_P_ARP)) {
		struct arphdr *arp = (void *)(eth + 1);
		struct arp_ipv4 *body = (void *)(arp + 1);
		if ((void *)(body + 1) > end)
			goto pass;
		if (arp->ar_hrd != __builtin_bswap16(ARPHRD_ETHER) ||
		    arp->ar_pro != __builtin_bswap16(ETH_P_IP) ||
		    arp->ar_hln != ETH_ALEN || arp->ar_pln != 4)
			goto pass;
		__u32 tpa;
		__builtin_memcpy(&tpa, body->tpa, 4);
		if (tpa != c->addr)
			goto pass;
		return redirect(ctx, STAT_REDIRECT_ARP);
	}

	if (eth->h_proto != __builtin_bswap16(ETH_P_IP))
		goto pass;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		goto pass;
	if (ip->version != 4 || ip->ihl < 5 || ip->daddr != c->addr)
		goto pass;
	/* ICMP carries no port: the whole datagram, every fragment of it, is
	 * ours (the stack owns the address), whatever the port bitmap says. */
	if (ip->protocol == IPPROTO_ICMP && (c->flags & STEER_ICMP))
		return redirect(ctx, STAT_REDIRECT_IP);
	int udp = ip->protocol == IPPROTO_UDP && (c->flags & STEER_UDP);
	if (ip->protocol != IPPROTO_TCP && !udp)
		goto pass;
	if (c->flags & STEER_ALL_PORTS)
		return redirect(ctx, STAT_REDIRECT_IP);
	/* A non-first fragment carries no port: leave it to the kernel. */
	if (ip->frag_off & __builtin_bswap16(0x1fff))
		goto pass;
	/* Both TCP and UDP keep the destination port at offset 2. */
	__u16 *l4 = (void *)ip + ip->ihl * 4;
	if ((void *)(l4 + 2) > end)
		goto pass;
	if (!port_steered(c, l4[1]))
		goto pass;
	return redirect(ctx, STAT_REDIRECT_IP);
pass:
	count(STAT_PASS);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
