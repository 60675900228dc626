/* Test port for the fuzz targets (see fuzz_port.h). */
#include "fuzz_port.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static void *p_tx_reserve(void *ctx, uint32_t len)
{
    struct fuzz_port *p = ctx;
    /* The device never asks for more than a port frame can be. */
    FUZZ_CHECK(len >= CW_NET_META_LEN + CW_NET_MIN_FRAME);
    FUZZ_CHECK(len <= CW_NET_META_LEN + CW_NET_MAX_FRAME);
    if (p->full)
        return NULL;
    /* An uncommitted reservation is simply replaced (the port contract). */
    free(p->res);
    p->res = malloc(len);
    if (!p->res)
        abort();
    p->res_len = len;
    return p->res;
}

static void p_tx_commit(void *ctx, uint32_t len)
{
    struct fuzz_port *p = ctx;
    FUZZ_CHECK(p->res != NULL);
    FUZZ_CHECK(len <= p->res_len);
    p->commits++;
    if (p->on_frame)
        p->on_frame(p->ctx, p->res, len);
    free(p->res);
    p->res = NULL;
    p->res_len = 0;
}

static void p_tx_flush(void *ctx)
{
    struct fuzz_port *p = ctx;
    p->flushes++;
}

static const void *p_rx_peek(void *ctx, uint32_t *len)
{
    struct fuzz_port *p = ctx;
    if (p->rx_next >= p->n_rx) {
        p->peeked = false;
        return NULL;
    }
    p->peeked = true;
    *len = p->rx_len[p->rx_next];
    return p->rx[p->rx_next];
}

static void p_rx_release(void *ctx)
{
    struct fuzz_port *p = ctx;
    /* Releasing a frame it never peeked would drop someone else's frame. */
    FUZZ_CHECK(p->peeked && p->rx_next < p->n_rx);
    p->peeked = false;
    p->rx_next++;
    p->releases++;
}

static void p_rx_flush(void *ctx)
{
    struct fuzz_port *p = ctx;
    p->rx_flushes++;
}

const struct cw_net_port_ops fuzz_port_ops = {
    .tx_reserve = p_tx_reserve,
    .tx_commit = p_tx_commit,
    .tx_flush = p_tx_flush,
    .rx_peek = p_rx_peek,
    .rx_release = p_rx_release,
    .rx_flush = p_rx_flush,
};

void fuzz_port_init(struct fuzz_port *p)
{
    memset(p, 0, sizeof(*p));
}

bool fuzz_port_add_rx(struct fuzz_port *p, const uint8_t *frame, uint32_t len)
{
    if (p->n_rx >= FUZZ_PORT_MAX_RX)
        return false;
    uint8_t *f = malloc(len ? len : 1);
    if (!f)
        abort();
    if (len)
        memcpy(f, frame, len);
    p->rx[p->n_rx] = f;
    p->rx_len[p->n_rx] = len;
    p->n_rx++;
    return true;
}

void fuzz_port_free(struct fuzz_port *p)
{
    free(p->res);
    p->res = NULL;
    for (unsigned i = 0; i < p->n_rx; i++)
        free(p->rx[i]);
    p->n_rx = 0;
}
