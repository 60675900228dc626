/* A test port for the fuzz targets (struct cw_net_port_ops): TX frames the
 * device commits are handed to a callback for checking; RX frames come from a
 * list the target fills from its input. Each reservation and each inbound
 * frame is its own exact-size allocation, so AddressSanitizer reports a
 * device writing past its reservation or reading past a frame. */
#ifndef CAUSEWAY_TESTS_FUZZ_PORT_H
#define CAUSEWAY_TESTS_FUZZ_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/net.h"

#define FUZZ_PORT_MAX_RX 64

struct fuzz_port {
    /* TX side */
    bool full;            /* tx_reserve refuses: the peer's ring is full */
    uint8_t *res;         /* open reservation */
    uint32_t res_len;
    uint64_t commits, flushes;
    void (*on_frame)(void *ctx, const uint8_t *frame, uint32_t len);
    void *ctx;
    /* RX side */
    uint8_t *rx[FUZZ_PORT_MAX_RX];
    uint32_t rx_len[FUZZ_PORT_MAX_RX];
    unsigned n_rx, rx_next;
    bool peeked;          /* rx_release is only valid after a successful peek */
    uint64_t releases, rx_flushes;
};

extern const struct cw_net_port_ops fuzz_port_ops;

void fuzz_port_init(struct fuzz_port *p);
/* Queue an inbound frame (copied). false when the list is full. */
bool fuzz_port_add_rx(struct fuzz_port *p, const uint8_t *frame, uint32_t len);
void fuzz_port_free(struct fuzz_port *p);

#endif
