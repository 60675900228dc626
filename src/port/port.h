/* A port: the shared-memory connection between a device process and its
 * peer (another device process over a link, or a switch). One memfd holds two
 * rings; side 0 produces into ring 0 and consumes ring 1, side 1 the reverse.
 * Four eventfds carry the notifications: for each ring, "data" (producer ->
 * consumer) and "space" (consumer -> producer). The memfd and eventfds are
 * capabilities handed over a unix socket (SCM_RIGHTS), never discovered.
 * The capacity each side uses is its own (from its configuration or the
 * hello message, checked against the memfd's size), never read from the
 * shared memory. */
#ifndef CAUSEWAY_PORT_PORT_H
#define CAUSEWAY_PORT_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/net.h"
#include "ring.h"

#define CW_PORT_DEFAULT_CAPACITY (1u << 20) /* bytes per direction */
/* Smallest capacity whose ring takes a maximal frame (CW_NET_META_LEN +
 * CW_NET_MAX_FRAME with its record header) in half of the area. */
#define CW_PORT_MIN_CAPACITY (1u << 18)
#define CW_PORT_MAX_CAPACITY CW_RING_MAX_CAPACITY
/* Largest record a port ring carries: one frame with its virtio header. */
#define CW_PORT_MAX_RECORD (CW_NET_META_LEN + CW_NET_MAX_FRAME)
#define CW_PORT_EFD_DATA 0
#define CW_PORT_EFD_SPACE 1

struct cw_port_fds {
    int memfd;
    int efd[2][2]; /* [ring][CW_PORT_EFD_DATA | CW_PORT_EFD_SPACE] */
};

struct cw_port_stats {
    uint64_t signals_sent;     /* eventfd writes to the peer */
    uint64_t wakeups;          /* eventfd reads from the peer */
};

struct cw_port {
    struct cw_port_fds fds;
    int side;
    uint32_t capacity;
    void *map;
    size_t map_len;
    struct cw_ring tx; /* ring[side] */
    struct cw_ring rx; /* ring[1 - side] */
    struct cw_port_stats stats;
    /* The owner polls while traffic flows: an empty RX ring or a full TX
     * ring does not ask the peer for a signal (see cw_net.polling). */
    bool polling;
};

/* A power of two within [CW_PORT_MIN_CAPACITY, CW_PORT_MAX_CAPACITY]. */
bool cw_port_capacity_valid(uint32_t capacity);

/* Shared-memory size for a capacity: two rings, each page-aligned. */
size_t cw_port_shm_size(uint32_t capacity);

/* New memfd (sealed at its size) and four non-blocking eventfds. */
int cw_port_fds_create(struct cw_port_fds *f, uint32_t capacity);
void cw_port_fds_close(struct cw_port_fds *f);
/* All six fds set to -1. */
void cw_port_fds_reset(struct cw_port_fds *f);

/* Map and attach. Takes ownership of *f (closes it on failure; *f is reset
 * either way). Refuses (-1, errno set) a capacity that is not valid, a memfd
 * whose size is not cw_port_shm_size(capacity) or that is not sealed against
 * shrinking and growing (a peer could otherwise truncate it under us: SIGBUS),
 * and eventfd slots holding anything but an anonymous-inode fd (a pipe or
 * socket could block or SIGPIPE us); the eventfds are made non-blocking.
 * initialize: zero the indexes (the creator). p->stats survives detach and
 * attach (zero the struct once before first use). */
int cw_port_attach(struct cw_port *p, struct cw_port_fds *f, int side, uint32_t capacity,
                   bool initialize);
void cw_port_detach(struct cw_port *p);
static inline bool cw_port_attached(const struct cw_port *p) { return p->map != NULL; }

/* The fds the owner's event loop watches: inbound data, and space freed in
 * the outbound ring. Reading them (cw_port_drain) clears the wake flags. */
int cw_port_rx_data_fd(const struct cw_port *p);
int cw_port_tx_space_fd(const struct cw_port *p);
void cw_port_drain(struct cw_port *p, int fd);

/* A ring of this port was found corrupt (the peer misbehaved). */
bool cw_port_broken(const struct cw_port *p);

/* The struct cw_net_port_ops over a port (ctx: struct cw_port *). */
extern const struct cw_net_port_ops cw_port_net_ops;

#endif
