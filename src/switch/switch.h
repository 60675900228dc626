/* The isolating switch: forwarding between ports with L2 learning,
 * anti-spoofing and cross-domain policy.
 *
 * Ports are numbered 0..CW_SW_MAX_PORTS-1 by the configuration. Each port
 * belongs to one domain and is a NIC (a VM's virtio-net device, whose MAC
 * and addresses the system description fixes) or an uplink (the host's
 * network through a TAP). Frames move through struct cw_net_port_ops, the
 * same interface the device core uses: a shared-memory port (cw_port_net_ops),
 * a TAP, or a test double. Every frame is CW_NET_META_LEN bytes of
 * virtio_net_hdr_mrg_rxbuf followed by the Ethernet frame.
 *
 * Per frame from port i:
 *  1. Length check, then the first CW_FRAME_PREFIX bytes (header and
 *     Ethernet/IP/L4 headers) are copied into switch-private memory. All
 *     checks and the decision use that copy only. What is delivered is that
 *     copy followed by the rest of the frame (bytes no check looked at) read
 *     from the sender's ring once, straight into each destination's ring.
 *     A sender rewriting its ring meanwhile changes only payload it could
 *     have sent anyway. (The destination ring is not a safe place to decide
 *     in: its reader could see a denied frame there before we drop it.)
 *  2. Anti-spoofing: from a NIC, the source MAC (and an ARP sender MAC) must
 *     be the NIC's; if the NIC has any address configured, an IPv4 source or
 *     ARP sender IP must be one of its IPv4 addresses (0.0.0.0 allowed as an
 *     ARP probe's sender) and an IPv6 source one of its IPv6 addresses, its
 *     EUI-64 link-local address, or :: for ICMPv6 (DAD, MLD); a header that
 *     cannot be read completely is refused. From an uplink, the source MAC
 *     must be the configured one if there is one, else any unicast address
 *     that is not a NIC's. Frames with more than two VLAN tags are refused
 *     from a NIC (their L3 cannot be checked).
 *  3. Offload metadata passes through with the frame, but a checksum the
 *     receiver is asked to complete must not land on any byte the decision
 *     read, and a GSO type must agree with the parsed headers (TCPv4/TCPv6).
 *  4. Destination: a known unicast address goes to its port (dropped if the
 *     port is down: never flooded); an unknown unicast, broadcast or
 *     multicast goes to every other up port the policy allows.
 *  5. Policy: same domain allows; across domains the first matching rule
 *     decides, none denies (default_deny). Evaluated once per destination
 *     domain per frame; each evaluation counts on the rule or default_deny.
 *  6. Each destination: no room in its ring -> dropped and counted there as
 *     no_room. The switch never waits for a receiver.
 * Work is bounded: at most `budget` frames per port per round.
 *
 * Portable: no OS calls, no allocation; the struct is large (~160 KiB). */
#ifndef CAUSEWAY_SWITCH_SWITCH_H
#define CAUSEWAY_SWITCH_SWITCH_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/net.h"
#include "../system/policy_rule.h"
#include "fdb.h"
#include "frame.h"

#define CW_SW_MAX_PORTS 64u
#define CW_SW_MAX_DOMAINS 128u
#define CW_SW_MAX_ADDRS 8u
#define CW_SW_NAME_MAX 63u
#define CW_SW_DEFAULT_BUDGET 64u

enum cw_sw_port_kind { CW_SW_NIC, CW_SW_UPLINK };

enum cw_sw_drop {
    CW_SW_DROP_BAD_FRAME,   /* ingress: too short/long, or unreadable header a check needs */
    CW_SW_DROP_SPOOFED_MAC, /* ingress: source (or ARP sender) MAC not the port's */
    CW_SW_DROP_SPOOFED_IP,  /* ingress: IPv4/IPv6 source or ARP sender IP not the port's */
    CW_SW_DROP_BAD_OFFLOAD, /* ingress: offload metadata inconsistent with the headers */
    CW_SW_DROP_POLICY,      /* ingress: kept from at least one destination by the policy */
    CW_SW_DROP_SAME_PORT,   /* ingress: destination is the sender's own port */
    CW_SW_DROP_NO_ROOM,     /* egress: destination ring full */
    CW_SW_DROP_PORT_DOWN,   /* egress: destination known but not attached */
    CW_SW_DROP_TX_ERROR,    /* egress: the port failed to take the frame (TAP write error) */
    CW_SW_DROP__COUNT
};

/* "spoofed_mac", ... : the names in stats and logs. */
const char *cw_sw_drop_name(enum cw_sw_drop d);

struct cw_sw_port_config {
    char name[CW_SW_NAME_MAX + 1];
    enum cw_sw_port_kind kind;
    bool has_mac; /* required for a NIC */
    uint8_t mac[6];
    int domain;   /* 0..CW_SW_MAX_DOMAINS-1 */
    unsigned n_ipv4, n_ipv6;
    uint32_t ipv4[CW_SW_MAX_ADDRS]; /* host byte order */
    uint8_t ipv6[CW_SW_MAX_ADDRS][16];
};

struct cw_sw_port_stats {
    uint64_t rx_frames, rx_bytes; /* received from the port (every frame, Ethernet bytes) */
    uint64_t tx_frames, tx_bytes; /* delivered into the port */
    uint64_t drops[CW_SW_DROP__COUNT];
};

struct cw_sw_port {
    bool configured;
    struct cw_sw_port_config cfg;
    uint8_t ll6[16];                     /* EUI-64 link-local of cfg.mac */
    const struct cw_net_port_ops *ops;   /* NULL: down */
    void *ctx;
    bool tx_dirty;                       /* committed frames to flush */
    /* The last unicast destination sent from this port that the static
     * table resolved (a VM mostly talks to one peer at a time): the MAC in
     * the low 48 bits, bit 48 set when valid. A static entry never ages,
     * moves or goes away, so a hit never goes stale. Saves the keyed hash
     * per frame. */
    uint64_t dst_cache_key;
    uint16_t dst_cache_port;
    struct cw_sw_port_stats stats;
};

/* A drop worth telling, passed to the log callback (rate-limited). */
struct cw_sw_drop_event {
    enum cw_sw_drop reason;
    unsigned port;            /* the ingress port */
    int dest;                 /* the destination port, or -1 (flood / none) */
    int rule_line;            /* policy: the denying rule's line, or -1 (default deny) */
    const struct cw_frame *frame; /* NULL when the frame was too short or long to parse */
    uint64_t suppressed;      /* events not reported since the last one */
};

struct cw_switch {
    unsigned n_domains;
    struct cw_sw_port ports[CW_SW_MAX_PORTS];
    struct cw_policy policy;
    uint64_t rule_matched[CW_POLICY_MAX_RULES];
    uint64_t default_deny;
    struct cw_fdb fdb;
    uint32_t budget;
    unsigned rr;              /* where the next round starts (fairness of order) */
    uint64_t tx_dirty_mask;   /* bit j: ports[j].tx_dirty (flush visits only these) */
    uint64_t now_ms;          /* time of the current round */
    /* Log callback, at most log_burst events per log_interval_ms. */
    void (*on_drop)(void *ctx, const struct cw_sw_drop_event *ev);
    void *log_ctx;
    uint32_t log_interval_ms, log_burst;
    uint64_t log_window_ms, log_suppressed;
    uint32_t log_used;
    /* The private copy of the frame being decided on. */
    _Alignas(16) uint8_t hdr[CW_FRAME_PREFIX];
    int8_t verdict[CW_SW_MAX_DOMAINS]; /* per-frame cache: -1 unknown, 0 deny, 1 allow */
};

/* Initialise an empty switch (no ports, no rules, default budget).
 * seed: random, for the forwarding table's hash. */
void cw_switch_init(struct cw_switch *sw, uint64_t seed, uint32_t fdb_aging_ms);

/* Configure port id (before it comes up). -1 if id, domain or addresses are
 * out of range, a NIC has no MAC, a MAC is a group address, or the MAC is
 * already another port's. */
int cw_switch_add_port(struct cw_switch *sw, unsigned id, const struct cw_sw_port_config *cfg);

/* Rules (copied). -1 if there are too many or one names a domain out of
 * range. n_domains bounds the domains ports and rules may name. */
int cw_switch_set_policy(struct cw_switch *sw, unsigned n_domains, const struct cw_policy *p);

/* Attach / detach the port's frame interface. Down forgets what was learned
 * on the port; counters stay. -1 if id is not configured. */
int cw_switch_port_up(struct cw_switch *sw, unsigned id, const struct cw_net_port_ops *ops,
                      void *ctx);
void cw_switch_port_down(struct cw_switch *sw, unsigned id);
static inline bool cw_switch_port_is_up(const struct cw_switch *sw, unsigned id)
{
    return id < CW_SW_MAX_PORTS && sw->ports[id].ops != 0;
}

/* One round: every port whose bit is set in *want is served for up to
 * `budget` frames; a port that had more keeps its bit, the others lose it.
 * Then every destination written to is flushed (one signal each) and every
 * source's consumed space returned. Returns *want != 0. */
bool cw_switch_round(struct cw_switch *sw, uint64_t *want, uint64_t now_ms);

/* Count a drop the port's driver saw (e.g. a TAP write that failed). */
void cw_switch_count_drop(struct cw_switch *sw, unsigned id, enum cw_sw_drop reason);

#endif
