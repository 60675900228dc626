/* Control messages between the launcher (`causeway run`) and its children
 * (device and switch processes): one JSON object per SOCK_SEQPACKET datagram,
 * optionally carrying fds (SCM_RIGHTS). See docs/CONTROL.md for the protocol.
 *
 * Shared by the launcher, `causeway device --control-fd` and
 * `causeway switch --control-fd` (switch engineer: use these instead of
 * your own recvmsg code). What the helpers guarantee on receive:
 *   - the datagram fit (no MSG_TRUNC / MSG_CTRUNC) and is valid UTF-8 JSON
 *     with no duplicate keys and no NUL in strings;
 *   - the top level is an object whose "op" is a string of 1..32 bytes;
 *   - fds arrived only as SCM_RIGHTS, at most CW_CTL_MAX_FDS of them, each
 *     close-on-exec; whenever the message is refused, every fd that came
 *     with it is closed, so a hostile peer cannot leak fds into us.
 * The caller still checks the fields of each op (cw_ctl_keys_only and the
 * getters below) and the kind of each fd (e.g. cw_port_attach checks the
 * port's memfd and eventfds).
 *
 * Every send is non-blocking (MSG_DONTWAIT | MSG_NOSIGNAL): a peer that
 * stopped reading must never stall a data path or the launcher. */
#ifndef CAUSEWAY_SYSTEM_CONTROL_H
#define CAUSEWAY_SYSTEM_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../port/port.h"

/* A switch's config for 64 ports and 256 rules stays well below this; the
 * socket pair's send buffers are raised to take it in one datagram. */
#define CW_CTL_MAX_MSG (256u * 1024u)
#define CW_CTL_MAX_FDS 8u
#define CW_CTL_MAX_OP 32u
/* A port travels as 5 fds: memfd, efd[0][data], efd[0][space],
 * efd[1][data], efd[1][space]. */
#define CW_CTL_PORT_FDS 5u

enum cw_ctl_result {
    CW_CTL_MSG = 1,   /* *msg holds a valid message (and *nfds fds) */
    CW_CTL_EOF = 0,   /* the peer hung up (or sent an empty datagram) */
    CW_CTL_AGAIN = -1,/* nothing to read (non-blocking socket) */
    CW_CTL_BAD = -2,  /* one malformed message, dropped (fds closed); err says why */
    CW_CTL_ERROR = -3,/* the socket failed (errno); give it up */
};

/* socketpair(AF_UNIX, SOCK_SEQPACKET), both ends close-on-exec and with send
 * buffers for CW_CTL_MAX_MSG. The end handed to a child must have its
 * close-on-exec flag cleared in the child (e.g. dup2 or fcntl after fork). */
int cw_ctl_socketpair(int sv[2]);

/* Send one message with nfds fds (may be 0). 0, or -1 with errno (EMSGSIZE:
 * encoded message too large; EAGAIN: the peer's queue is full). The fds stay
 * the caller's: close them after a successful send if you do not need them. */
int cw_ctl_send(int fd, const json_t *msg, const int *fds, unsigned nfds);

/* Helpers that build and send a message: {"op":"error","error":why},
 * {"op":"event","event":name} (with extra fields merged from `more`, which
 * may be NULL; `more` is not consumed). */
int cw_ctl_send_error(int fd, const char *why);
int cw_ctl_send_event(int fd, const char *event, const json_t *more);

/* Receive one message. On CW_CTL_MSG the caller owns *msg (json_decref) and
 * fds[0..*nfds) (fds must have room for CW_CTL_MAX_FDS). On any other result
 * *msg is NULL and *nfds 0. err (may be NULL) gets the reason of CW_CTL_BAD. */
enum cw_ctl_result cw_ctl_recv(int fd, json_t **msg, int *fds, unsigned *nfds, char *err,
                               size_t errlen);

/* The message's "op" (valid after cw_ctl_recv returned CW_CTL_MSG). */
const char *cw_ctl_op(const json_t *msg);

/* Close fds[0..n) and set them to -1. */
void cw_ctl_close_fds(int *fds, unsigned n);

/* Field checks. Each returns 0, or -1 after writing "FIELD: reason" to err. */
/* Refuse any key not in the NULL-terminated list ("op" is always allowed). */
int cw_ctl_keys_only(const json_t *msg, const char *const *allowed, char *err, size_t errlen);
/* An integer within [min, max]. Absent: -1 unless `dflt` is non-NULL (then
 * *out = *dflt). */
int cw_ctl_get_uint(const json_t *msg, const char *key, uint64_t min, uint64_t max,
                    const uint64_t *dflt, uint64_t *out, char *err, size_t errlen);
/* A string of 1..maxlen bytes (no NUL: the parser refuses those). */
int cw_ctl_get_str(const json_t *msg, const char *key, size_t maxlen, const char **out,
                   char *err, size_t errlen);
int cw_ctl_get_bool(const json_t *msg, const char *key, bool *out, char *err, size_t errlen);

/* A port message's fds, in the order above. Sending: fds are the caller's.
 * Taking: exactly CW_CTL_PORT_FDS fds required, else they are all closed and
 * -1 returned; on success the fds move into *out (fds[] set to -1). The fds
 * are not checked here: cw_port_attach checks their kind and sizes. */
void cw_ctl_port_fds_array(const struct cw_port_fds *f, int out[CW_CTL_PORT_FDS]);
int cw_ctl_take_port_fds(int *fds, unsigned nfds, struct cw_port_fds *out);

#endif
