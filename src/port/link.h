/* A link: two device processes joined by one port, rendezvousing on a unix
 * socket path. Whichever starts first listens; the other connects. The
 * listener creates the port (memfd + eventfds) and hands it over with a hello
 * message (SCM_RIGHTS); the connection then stays open as the liveness
 * channel: when the peer dies it hangs up, the link goes down, the port is
 * unmapped, and the survivor waits for a new peer (listening again, taking
 * over the path if the listener was the one that died). Neither side ever
 * maps the other's guest memory: only the port's memfd is shared. */
#ifndef CAUSEWAY_PORT_LINK_H
#define CAUSEWAY_PORT_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "port.h"

struct cw_link;

struct cw_link_events {
    /* The set of fds to watch changed (listen, connection, port fds). Called
     * with the link already showing the new set, while fds that left it are
     * still open (so an epoll set can still remove them), and before
     * state_changed. cw_link_open and cw_link_close call no callback. */
    void (*fds_changed)(void *ctx, struct cw_link *l);
    /* Carrier: the port is attached and the peer alive (true) or not. */
    void (*state_changed)(void *ctx, struct cw_link *l, bool up);
};

struct cw_link_stats {
    uint64_t ups, downs;
    uint64_t refused;        /* extra or malformed peers turned away */
};

struct cw_link {
    char *path;
    uint32_t capacity;
    int listen_fd;           /* -1 unless listening */
    int conn_fd;             /* -1 unless connected */
    bool up;
    struct cw_port port;
    struct cw_link_stats stats;
    const struct cw_link_events *ev;
    void *ev_ctx;
    char last_error[128];
    /* private */
    uint64_t path_dev, path_ino; /* the socket file we bound, to tell if it is still ours */
    uint32_t hello_wait;         /* ticks spent connected without a hello */
};

/* Connect to a listening peer at path, or listen there. -1 with a reason in
 * last_error if neither works (bad path, permissions). */
int cw_link_open(struct cw_link *l, const char *path, uint32_t capacity,
                 const struct cw_link_events *ev, void *ev_ctx);

/* Event loop hooks: listening socket readable; connection readable or hung
 * up; periodic tick (every ~100 ms) while down: it retries the rendezvous,
 * gives up on a listener that sends no hello, and makes a listener without
 * a peer rejoin if it is no longer the one that answers at the path (two
 * devices raced for it). Calling it while up is harmless. */
void cw_link_on_listen(struct cw_link *l);
void cw_link_on_conn(struct cw_link *l);
void cw_link_tick(struct cw_link *l);

/* Take the link down (peer misbehaved, e.g. a corrupt ring). */
void cw_link_drop(struct cw_link *l, const char *why);

void cw_link_close(struct cw_link *l);

#endif
