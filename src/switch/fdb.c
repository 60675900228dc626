/* Forwarding table (see fdb.h). */
#include "fdb.h"

/* splitmix64 finaliser over the address xor the seed: every input bit
 * reaches every output bit, so without the seed a peer cannot predict which
 * addresses share a bucket. */
static uint64_t hash(const struct cw_fdb *t, const uint8_t m[6])
{
    uint64_t z = cw_mac_key(m) ^ t->seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static bool mac_eq(const uint8_t a[6], const uint8_t b[6])
{
    return cw_mac_key(a) == cw_mac_key(b);
}

static bool live(const struct cw_fdb *t, const struct cw_fdb_entry *e, uint64_t now)
{
    /* A clock that went backwards (now < seen) counts as fresh. */
    return e->used && (now < e->seen_ms || now - e->seen_ms < t->aging_ms);
}

void cw_fdb_init(struct cw_fdb *t, uint64_t seed, uint32_t aging_ms)
{
    __builtin_memset(t, 0, sizeof(*t));
    t->seed = seed;
    t->aging_ms = aging_ms ? aging_ms : CW_FDB_DEFAULT_AGING_MS;
}

int cw_fdb_add_static(struct cw_fdb *t, const uint8_t mac[6], uint16_t port)
{
    /* Keep the probe sequences short: never more than half full. */
    if (t->n_static >= CW_FDB_STATIC_SLOTS / 2u)
        return -1;
    uint32_t i = (uint32_t)hash(t, mac) & (CW_FDB_STATIC_SLOTS - 1u);
    for (;; i = (i + 1u) & (CW_FDB_STATIC_SLOTS - 1u)) {
        struct cw_fdb_entry *e = &t->statics[i];
        if (!e->used) {
            for (int k = 0; k < 6; k++)
                e->mac[k] = mac[k];
            e->port = port;
            e->used = true;
            t->n_static++;
            return 0;
        }
        if (mac_eq(e->mac, mac))
            return e->port == port ? 0 : -1;
    }
}

int cw_fdb_static_port(const struct cw_fdb *t, const uint8_t mac[6])
{
    /* Ends: at least half the slots are empty. */
    uint32_t i = (uint32_t)hash(t, mac) & (CW_FDB_STATIC_SLOTS - 1u);
    for (;; i = (i + 1u) & (CW_FDB_STATIC_SLOTS - 1u)) {
        const struct cw_fdb_entry *e = &t->statics[i];
        if (!e->used)
            return -1;
        if (mac_eq(e->mac, mac))
            return e->port;
    }
}

static struct cw_fdb_entry *bucket(struct cw_fdb *t, const uint8_t mac[6])
{
    return t->dyn[hash(t, mac) & (CW_FDB_BUCKETS - 1u)];
}

int cw_fdb_learned_port(const struct cw_fdb *t, const uint8_t mac[6], uint64_t now_ms)
{
    const struct cw_fdb_entry *b = t->dyn[hash(t, mac) & (CW_FDB_BUCKETS - 1u)];
    for (unsigned w = 0; w < CW_FDB_WAYS; w++)
        if (live(t, &b[w], now_ms) && mac_eq(b[w].mac, mac))
            return b[w].port;
    return -1;
}

int cw_fdb_lookup(const struct cw_fdb *t, const uint8_t mac[6], uint64_t now_ms)
{
    int p = cw_fdb_static_port(t, mac);
    return p >= 0 ? p : cw_fdb_learned_port(t, mac, now_ms);
}

void cw_fdb_learn(struct cw_fdb *t, const uint8_t mac[6], uint16_t port, uint64_t now_ms)
{
    struct cw_fdb_entry *b = bucket(t, mac);
    struct cw_fdb_entry *slot = 0;
    for (unsigned w = 0; w < CW_FDB_WAYS; w++) {
        if (b[w].used && mac_eq(b[w].mac, mac)) {
            if (live(t, &b[w], now_ms) && b[w].port != port)
                t->stats.moved++;
            else if (!live(t, &b[w], now_ms))
                t->stats.learned++;
            b[w].port = port;
            b[w].seen_ms = now_ms;
            return;
        }
        if (!live(t, &b[w], now_ms)) {
            if (!slot)
                slot = &b[w];
        }
    }
    if (!slot) {
        /* Full bucket: the least recently seen entry goes. */
        slot = &b[0];
        for (unsigned w = 1; w < CW_FDB_WAYS; w++)
            if (b[w].seen_ms < slot->seen_ms)
                slot = &b[w];
        t->stats.evicted++;
    }
    for (int k = 0; k < 6; k++)
        slot->mac[k] = mac[k];
    slot->port = port;
    slot->seen_ms = now_ms;
    slot->used = true;
    t->stats.learned++;
}

void cw_fdb_forget_port(struct cw_fdb *t, uint16_t port)
{
    for (unsigned i = 0; i < CW_FDB_BUCKETS; i++)
        for (unsigned w = 0; w < CW_FDB_WAYS; w++)
            if (t->dyn[i][w].used && t->dyn[i][w].port == port)
                t->dyn[i][w].used = false;
}

unsigned cw_fdb_learned_count(const struct cw_fdb *t, uint64_t now_ms)
{
    unsigned n = 0;
    for (unsigned i = 0; i < CW_FDB_BUCKETS; i++)
        for (unsigned w = 0; w < CW_FDB_WAYS; w++)
            if (live(t, &t->dyn[i][w], now_ms))
                n++;
    return n;
}
