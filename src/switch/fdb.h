/* The switch's forwarding table: MAC address -> port.
 *
 * Two parts. Static entries come from the configuration (a NIC's MAC, an
 * uplink's configured MAC): they never age, never move, and a frame from
 * another port claiming such an address is a spoof, not a move. Learned
 * entries (hosts behind an uplink with no fixed MAC) live in a bounded
 * set-associative table: a keyed hash picks a bucket of CW_FDB_WAYS slots;
 * an entry older than the aging time is gone; a full bucket evicts its least
 * recently seen entry. Memory and work per frame are constant whatever a
 * peer sends.
 *
 * Portable: no OS calls, no allocation; time is the caller's (milliseconds
 * from any monotonic clock). */
#ifndef CAUSEWAY_SWITCH_FDB_H
#define CAUSEWAY_SWITCH_FDB_H

#include <stdbool.h>
#include <stdint.h>

/* A MAC address as a 48-bit integer (two loads, not six; the byte order is
 * the host's, the same for every caller). */
static inline uint64_t cw_mac_key(const uint8_t m[6])
{
    uint32_t lo;
    uint16_t hi;
    __builtin_memcpy(&lo, m, 4);
    __builtin_memcpy(&hi, m + 4, 2);
    return (uint64_t)lo | (uint64_t)hi << 32;
}

#define CW_FDB_STATIC_SLOTS 256u /* power of two; at most half used (64 ports x 2) */
#define CW_FDB_BUCKETS 1024u     /* power of two */
#define CW_FDB_WAYS 4u
#define CW_FDB_DEFAULT_AGING_MS 300000u

struct cw_fdb_entry {
    uint8_t mac[6];
    uint16_t port;
    bool used;
    uint64_t seen_ms;
};

struct cw_fdb_stats {
    uint64_t learned;  /* new entries */
    uint64_t moved;    /* an address seen on another port */
    uint64_t evicted;  /* live entries pushed out by a full bucket */
};

struct cw_fdb {
    uint64_t seed;
    uint32_t aging_ms;
    unsigned n_static;
    struct cw_fdb_stats stats;
    struct cw_fdb_entry statics[CW_FDB_STATIC_SLOTS];
    struct cw_fdb_entry dyn[CW_FDB_BUCKETS][CW_FDB_WAYS];
};

/* seed: a random value, so a peer cannot aim addresses at one bucket.
 * aging_ms 0: the default. */
void cw_fdb_init(struct cw_fdb *t, uint64_t seed, uint32_t aging_ms);

/* Fix `mac` on `port`. -1 if the table is half full (never happens with the
 * switch's port limit) or mac is already static on another port. */
int cw_fdb_add_static(struct cw_fdb *t, const uint8_t mac[6], uint16_t port);

/* The static port of mac, or -1. */
int cw_fdb_static_port(const struct cw_fdb *t, const uint8_t mac[6]);

/* The live learned port of mac, or -1 (statics not consulted). */
int cw_fdb_learned_port(const struct cw_fdb *t, const uint8_t mac[6], uint64_t now_ms);

/* The port for mac (static first, then a live learned entry), or -1. */
int cw_fdb_lookup(const struct cw_fdb *t, const uint8_t mac[6], uint64_t now_ms);

/* Record that mac was seen on port (a unicast address that is not static:
 * the caller checks). */
void cw_fdb_learn(struct cw_fdb *t, const uint8_t mac[6], uint16_t port, uint64_t now_ms);

/* Drop every learned entry pointing at port (it went down). */
void cw_fdb_forget_port(struct cw_fdb *t, uint16_t port);

/* Live learned entries (for stats). */
unsigned cw_fdb_learned_count(const struct cw_fdb *t, uint64_t now_ms);

#endif
