/* Port: two frame rings in one sealed memfd, four eventfds (Linux).
 *
 * The memfd and eventfds may come from a peer process, so everything about
 * them is checked before use: the memfd's size must be exactly what our own
 * capacity implies (never a size read from the peer) and it must be sealed
 * against shrinking and growing, otherwise the peer could ftruncate it and
 * turn our next ring access into SIGBUS. The eventfd slots must hold
 * anonymous-inode fds, made non-blocking, so a signal write can never block
 * our event loop or raise SIGPIPE. */
#define _GNU_SOURCE
#include "port.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fixed, not sysconf(): the size is part of the protocol between two
 * processes and must not depend on who computes it. */
#define PORT_PAGE 4096u

static size_t ring_stride(uint32_t capacity)
{
    return (cw_ring_shared_size(capacity) + PORT_PAGE - 1u) & ~(size_t)(PORT_PAGE - 1u);
}

bool cw_port_capacity_valid(uint32_t capacity)
{
    return capacity >= CW_PORT_MIN_CAPACITY && capacity <= CW_PORT_MAX_CAPACITY &&
           (capacity & (capacity - 1u)) == 0;
}

size_t cw_port_shm_size(uint32_t capacity)
{
    return 2u * ring_stride(capacity);
}

void cw_port_fds_reset(struct cw_port_fds *f)
{
    f->memfd = -1;
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            f->efd[r][k] = -1;
}

void cw_port_fds_close(struct cw_port_fds *f)
{
    int saved = errno; /* callers close on error paths and report errno */
    if (f->memfd >= 0)
        close(f->memfd);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            if (f->efd[r][k] >= 0)
                close(f->efd[r][k]);
    cw_port_fds_reset(f);
    errno = saved;
}

int cw_port_fds_create(struct cw_port_fds *f, uint32_t capacity)
{
    cw_port_fds_reset(f);
    if (!cw_port_capacity_valid(capacity)) {
        errno = EINVAL;
        return -1;
    }
    f->memfd = memfd_create("causeway-port", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (f->memfd < 0)
        goto fail;
    if (ftruncate(f->memfd, (off_t)cw_port_shm_size(capacity)) < 0)
        goto fail;
    /* SEAL_SEAL too: nobody, us included, can later add a write seal that
     * would stop a peer from mapping it writable. */
    if (fcntl(f->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        goto fail;
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            if ((f->efd[r][k] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
                goto fail;
    return 0;
fail:
    cw_port_fds_close(f);
    return -1;
}

static int check_memfd(int fd, size_t want)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return -1;
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size != want) {
        errno = EINVAL;
        return -1;
    }
    /* F_GET_SEALS fails (EINVAL) on anything but a memfd/shmem file. */
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        return -1;
    if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

static int check_eventfd(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return -1;
    /* Anonymous inodes (eventfd, timerfd, ...) carry no file type bits; pipes,
     * sockets, ttys and files do. A non-eventfd anonymous fd only makes our
     * 8-byte reads and writes fail, harmlessly, once it is non-blocking. */
    if ((st.st_mode & S_IFMT) != 0) {
        errno = EINVAL;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

int cw_port_attach(struct cw_port *p, struct cw_port_fds *f, int side, uint32_t capacity,
                   bool initialize)
{
    if (p->map != NULL)
        cw_port_detach(p);
    struct cw_port_stats stats = p->stats;
    *p = (struct cw_port){ .side = side, .stats = stats };
    cw_port_fds_reset(&p->fds);

    size_t size = cw_port_shm_size(capacity);
    if ((side != 0 && side != 1) || !cw_port_capacity_valid(capacity)) {
        errno = EINVAL;
        goto fail;
    }
    if (check_memfd(f->memfd, size) < 0)
        goto fail;
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            if (check_eventfd(f->efd[r][k]) < 0)
                goto fail;

    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
    if (map == MAP_FAILED)
        goto fail;
    uint8_t *base = map;
    size_t stride = ring_stride(capacity);
    /* side s produces into ring s and consumes ring 1 - s. */
    if (cw_ring_attach_producer(&p->tx, base + (size_t)side * stride, capacity,
                                CW_PORT_MAX_RECORD, initialize) < 0 ||
        cw_ring_attach_consumer(&p->rx, base + (size_t)(1 - side) * stride, capacity,
                                CW_PORT_MAX_RECORD, initialize) < 0) {
        munmap(map, size);
        errno = EINVAL;
        goto fail;
    }
    p->fds = *f;
    cw_port_fds_reset(f);
    p->capacity = capacity;
    p->map = map;
    p->map_len = size;
    return 0;
fail:
    cw_port_fds_close(f);
    p->tx.broken = p->rx.broken = true;
    return -1;
}

void cw_port_detach(struct cw_port *p)
{
    if (p->map != NULL)
        munmap(p->map, p->map_len);
    cw_port_fds_close(&p->fds);
    struct cw_port_stats stats = p->stats;
    *p = (struct cw_port){ .side = 0, .stats = stats };
    cw_port_fds_reset(&p->fds);
    p->tx.broken = p->rx.broken = true; /* inert until attached again */
}

int cw_port_rx_data_fd(const struct cw_port *p)
{
    return p->map ? p->fds.efd[1 - p->side][CW_PORT_EFD_DATA] : -1;
}

int cw_port_tx_space_fd(const struct cw_port *p)
{
    return p->map ? p->fds.efd[p->side][CW_PORT_EFD_SPACE] : -1;
}

void cw_port_drain(struct cw_port *p, int fd)
{
    if (p->map == NULL || fd < 0)
        return;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        p->stats.wakeups++;
    /* Clear our flag: we are awake and will re-arm it (prepare_wait) before
     * the next sleep. Until then the peer need not signal us. */
    if (fd == cw_port_rx_data_fd(p))
        cw_ring_woken(&p->rx);
    if (fd == cw_port_tx_space_fd(p))
        cw_ring_woken(&p->tx);
}

bool cw_port_broken(const struct cw_port *p)
{
    return p->map != NULL && (p->tx.broken || p->rx.broken);
}

static void signal_fd(struct cw_port *p, int fd)
{
    uint64_t one = 1;
    /* Non-blocking; EAGAIN only if the counter is saturated, in which case
     * the peer is already due to wake up. */
    if (write(fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
        p->stats.signals_sent++;
}

/* ---- struct cw_net_port_ops ---- */

static void port_tx_flush(void *ctx)
{
    struct cw_port *p = ctx;
    if (p->map != NULL && cw_ring_publish(&p->tx))
        signal_fd(p, p->fds.efd[p->side][CW_PORT_EFD_DATA]);
}

static void *port_tx_reserve(void *ctx, uint32_t len)
{
    struct cw_port *p = ctx;
    if (p->map == NULL)
        return NULL;
    void *d = cw_ring_reserve(&p->tx, len);
    if (d != NULL || p->tx.broken || len > p->tx.max_record)
        return d;
    /* Full. Publish what is committed first: the consumer cannot free space
     * for records it cannot see. Then ask for a signal and re-check. */
    if (p->tx.pending != 0)
        port_tx_flush(p);
    if (p->polling)
        return NULL;
    if (cw_ring_prepare_wait_space(&p->tx, len))
        return cw_ring_reserve(&p->tx, len);
    return NULL;
}

static void port_tx_commit(void *ctx, uint32_t len)
{
    struct cw_port *p = ctx;
    if (p->map != NULL)
        cw_ring_commit(&p->tx, len);
}

static void port_rx_flush(void *ctx)
{
    struct cw_port *p = ctx;
    if (p->map != NULL && cw_ring_consumer_publish(&p->rx))
        signal_fd(p, p->fds.efd[1 - p->side][CW_PORT_EFD_SPACE]);
}

static const void *port_rx_peek(void *ctx, uint32_t *len)
{
    struct cw_port *p = ctx;
    if (p->map == NULL)
        return NULL;
    const void *d = cw_ring_peek(&p->rx, len);
    if (d != NULL || p->rx.broken)
        return d;
    /* Empty. Hand back released space first (the producer may be waiting
     * for it), then ask for a signal and re-check. */
    if (p->rx.pending != 0)
        port_rx_flush(p);
    if (p->polling)
        return NULL;
    if (cw_ring_prepare_wait_data(&p->rx))
        return cw_ring_peek(&p->rx, len);
    return NULL;
}

static void port_rx_release(void *ctx)
{
    struct cw_port *p = ctx;
    if (p->map != NULL)
        cw_ring_release(&p->rx);
}

const struct cw_net_port_ops cw_port_net_ops = {
    .tx_reserve = port_tx_reserve,
    .tx_commit = port_tx_commit,
    .tx_flush = port_tx_flush,
    .rx_peek = port_rx_peek,
    .rx_release = port_rx_release,
    .rx_flush = port_rx_flush,
};
