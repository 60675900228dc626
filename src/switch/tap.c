/* TAP uplink port (see tap.h). */
#define _GNU_SOURCE
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int cw_tap_open(struct cw_tap *t, int fd, struct cw_switch *sw, unsigned port)
{
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    /* TUNGETIFF fails (EBADFD/ENOTTY) on anything but an attached tun/tap. */
    if (ioctl(fd, TUNGETIFF, &ifr) < 0)
        goto fail;
    short want = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if ((ifr.ifr_flags & (IFF_TAP | IFF_TUN | IFF_NO_PI | IFF_VNET_HDR)) != want) {
        errno = EINVAL;
        goto fail;
    }
    int hdr = CW_NET_META_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
        goto fail;
    /* Best effort: without it the host sends finished, MTU-sized frames. */
    (void)ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6));
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        goto fail;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    t->fd = fd;
    t->sw = sw;
    t->port = port;
    return 0;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

void cw_tap_close(struct cw_tap *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    t->rx_full = false;
}

static const void *tap_rx_peek(void *ctx, uint32_t *len)
{
    struct cw_tap *t = ctx;
    if (t->fd < 0 || t->failed)
        return NULL;
    if (!t->rx_full) {
        ssize_t n = read(t->fd, t->rx_buf, sizeof(t->rx_buf));
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                t->failed = true; /* the loop sees it and takes the port down */
                t->error = errno;
            }
            return NULL;
        }
        /* A short read (not even a header) is still a frame to the engine,
         * which drops and counts it. */
        t->rx_len = (uint32_t)n;
        t->rx_full = true;
    }
    *len = t->rx_len;
    return t->rx_buf;
}

static void tap_rx_release(void *ctx)
{
    struct cw_tap *t = ctx;
    t->rx_full = false;
}

static void tap_rx_flush(void *ctx)
{
    (void)ctx;
}

static void *tap_tx_reserve(void *ctx, uint32_t len)
{
    struct cw_tap *t = ctx;
    return t->fd >= 0 && len <= sizeof(t->tx_buf) ? t->tx_buf : NULL;
}

static void tap_tx_commit(void *ctx, uint32_t len)
{
    struct cw_tap *t = ctx;
    if (t->fd < 0 || len > sizeof(t->tx_buf))
        return;
    /* One frame per write. The kernel refuses malformed offload headers
     * (EINVAL) and drops when the interface is down (EIO): count, go on. */
    if (write(t->fd, t->tx_buf, len) != (ssize_t)len) {
        t->write_errors++;
        if (t->sw)
            cw_switch_count_drop(t->sw, t->port, CW_SW_DROP_TX_ERROR);
    }
}

static void tap_tx_flush(void *ctx)
{
    (void)ctx;
}

const struct cw_net_port_ops cw_tap_ops = {
    .tx_reserve = tap_tx_reserve,
    .tx_commit = tap_tx_commit,
    .tx_flush = tap_tx_flush,
    .rx_peek = tap_rx_peek,
    .rx_release = tap_rx_release,
    .rx_flush = tap_rx_flush,
};
