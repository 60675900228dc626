/* vhost-user backend (QEMU docs/interop/vhost-user.rst), the device side of
 * one frontend connection at a time, serving one struct cw_net.
 *
 * Every message from the frontend is untrusted: header flags and sizes,
 * payload sizes per request, region counts and overlap, ring indexes, sizes
 * and addresses, fd counts (unexpected fds are closed at once; CVE-2022-0669).
 * A malformed message closes the connection with a logged reason; the
 * backend goes back to listening (a VM reboot or a reconnecting frontend is
 * served again from scratch). Nothing here waits on an idle frontend: the
 * caller's event loop calls in when the sockets are readable; a message that
 * has begun to arrive must complete within msg_timeout_ms. */
#ifndef CAUSEWAY_VHOST_BACKEND_H
#define CAUSEWAY_VHOST_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/net.h"
#include "../gmem/guest_memory.h"
#include "../util/log.h"

struct cw_vhost_vring {
    int kick_fd;   /* guest doorbell; -1 none */
    int call_fd;   /* interrupt injection; -1 none (no interrupts) */
    int err_fd;    /* signalled when the queue cannot start; -1 none */
    uint16_t num;
    uint16_t base; /* last_avail_idx from SET_VRING_BASE (or the last stop) */
    uint64_t desc_uva, avail_uva, used_uva; /* as the frontend sent them */
    uint64_t desc_gpa, avail_gpa, used_gpa; /* translated over the current table */
    bool addr_set;
    bool enabled;  /* SET_VRING_ENABLE (or implicit without PROTOCOL_FEATURES) */
    bool started;  /* queue running in the device (cw_net_queue_start succeeded) */
};

struct cw_vhost_stats {
    uint64_t messages;
    uint64_t connections;
    uint64_t protocol_errors; /* connections closed for a bad message */
    uint64_t refused_connections; /* second frontends turned away */
    uint64_t unknown_requests;    /* requests ignored as not served */
    uint64_t queue_start_failures;/* cw_net_queue_start refused the guest's ring */
    uint64_t kicks[CW_NET_NUM_QUEUES];
};

struct cw_vhost;

/* What the event loop needs to hear from the backend. */
struct cw_vhost_events {
    /* Queue q's kick fd changed (fd -1: stop watching). */
    void (*kick_fd_changed)(void *ctx, int q, int old_fd, int new_fd);
    /* The connection fd changed (accepted: fd; closed: -1). */
    void (*conn_changed)(void *ctx, int old_fd, int new_fd);
    /* Queues started or stopped: the loop should try to process. */
    void (*queues_changed)(void *ctx);
};

struct cw_vhost {
    int listen_fd;
    int conn_fd;
    char *path;
    struct cw_net *net;
    struct cw_guest_memory mem;
    uint64_t features_offered;  /* net's offered | VHOST_USER_F_PROTOCOL_FEATURES */
    uint64_t features_acked;
    uint64_t protocol_features; /* negotiated */
    bool features_set;
    bool owner_set;
    uint16_t mtu;               /* from NET_SET_MTU, informational */
    struct cw_vhost_vring vring[CW_NET_NUM_QUEUES];
    struct cw_vhost_stats stats;
    const struct cw_vhost_events *ev;
    void *ev_ctx;
    char last_error[128];       /* reason the last connection was closed */
    uint32_t msg_timeout_ms;    /* budget to receive one whole message or send a reply */
    struct cw_ratelimit rl;     /* for everything a frontend can make us log */
};

/* Bind a listening unix socket at path (a stale socket file is replaced; a
 * socket another process still listens on fails with EADDRINUSE, any other
 * file there with EEXIST, and both are left alone). -1 with
 * errno on failure. The device's features come from net->offered, and
 * net->mem is pointed at v->mem.gmem (the guest memory this backend maps).
 * Once a message has begun to arrive, the rest of it (and any reply) must
 * move within msg_timeout_ms (default 2000), or the connection is closed:
 * a stalled frontend cannot hang the event loop. */
int cw_vhost_init(struct cw_vhost *v, const char *path, struct cw_net *net,
                  enum cw_gmem_strategy strategy, const struct cw_vhost_events *ev,
                  void *ev_ctx);

/* Listening socket readable: accept (a second frontend while one is connected
 * is refused and closed). */
void cw_vhost_on_listen(struct cw_vhost *v);

/* Connection readable: read and handle messages until the socket would
 * block. Returns false if the connection was closed (peer gone or protocol
 * error; see last_error). */
bool cw_vhost_on_conn(struct cw_vhost *v);

/* Kick fd readable for queue q: drain the eventfd, count the kick. A kick
 * fd that reports end of file or an error is dropped (kick_fd_changed to -1)
 * so the loop does not spin on it. */
void cw_vhost_on_kick(struct cw_vhost *v, int q);

/* Inject an interrupt on queue q (write its call eventfd). */
void cw_vhost_interrupt(struct cw_vhost *v, int q);

/* Drop the connection: stop queues, unmap memory, close fds. */
void cw_vhost_disconnect(struct cw_vhost *v, const char *why);

/* Close everything, unlink the socket. */
void cw_vhost_destroy(struct cw_vhost *v);

#endif
