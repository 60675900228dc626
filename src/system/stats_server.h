/* The system control socket of `causeway run`: a unix stream socket where
 * clients (`causeway stats`, socat, scripts) write one JSON object per line
 * and read one JSON object per line back (docs/CONTROL.md). Clients are
 * untrusted: a request line is at most CW_SRV_LINE_MAX bytes, at most
 * CW_SRV_MAX_CLIENTS are served at once, and a client that does not read its
 * reply is dropped instead of growing our buffers or blocking the launcher. */
#ifndef CAUSEWAY_SYSTEM_STATS_SERVER_H
#define CAUSEWAY_SYSTEM_STATS_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_SRV_MAX_CLIENTS 16
#define CW_SRV_LINE_MAX 4096
#define CW_SRV_REPLY_MAX (8u << 20) /* queued reply bytes per client */
#define CW_SRV_IDLE_MS 10000        /* a connection idle (or not reading) this long is closed */

struct cw_srv_client {
    int fd;              /* -1: free slot */
    char in[CW_SRV_LINE_MAX];
    size_t in_len;
    char *out;           /* queued reply bytes */
    size_t out_len, out_off;
    bool waiting;        /* asked for something the caller will answer later */
    bool eof;            /* the client shut down its side; answer, then close */
    uint64_t last_ms;    /* last progress */
};

struct cw_srv {
    int listen_fd;
    char path[108];
    struct cw_srv_client c[CW_SRV_MAX_CLIENTS];
};

/* Listen at path (an existing socket file there is replaced only if nobody
 * answers on it). 0, or -1 with a reason in err. */
int cw_srv_open(struct cw_srv *s, const char *path, char *err, size_t errlen);
void cw_srv_close(struct cw_srv *s);

/* The listening socket is readable: accept (a client beyond the limit is
 * closed at once). */
void cw_srv_accept(struct cw_srv *s, uint64_t now_ms);

/* Client i is readable. Returns 1 with *req set (a JSON object, the
 * caller's) when a request line is complete, 0 when there is nothing more
 * to do now, -1 when the client was closed (hang-up, error, a line too long,
 * or not JSON: the last two get an error line first). Call again while it
 * returns 1. */
int cw_srv_read(struct cw_srv *s, int i, json_t **req, uint64_t now_ms);

/* Queue one reply line and send what the socket takes now. */
void cw_srv_reply(struct cw_srv *s, int i, const json_t *reply, uint64_t now_ms);

/* Client i is writable: send more of its queued reply. */
void cw_srv_on_writable(struct cw_srv *s, int i, uint64_t now_ms);

/* Whether to watch client i for reading: not while its request is being
 * answered (one at a time per client) nor after its end of file. */
bool cw_srv_wants_read(const struct cw_srv *s, int i);

/* Whether client i has unsent reply bytes (watch it for writing). */
bool cw_srv_wants_write(const struct cw_srv *s, int i);

/* Close clients idle for longer than CW_SRV_IDLE_MS (not counting those
 * waiting for an answer from us). */
void cw_srv_tick(struct cw_srv *s, uint64_t now_ms);

void cw_srv_drop(struct cw_srv *s, int i);

#endif
