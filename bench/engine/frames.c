/* Benchmark frames (see frames.h). */
#include "frames.h"

#include <string.h>

static const uint8_t mac_a[6] = {0x52, 0x54, 0x00, 0xca, 0x00, 0x01};
static const uint8_t mac_b[6] = {0x52, 0x54, 0x00, 0xca, 0x00, 0x02};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint32_t sum16(uint32_t s, const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

void frame_build(uint8_t *f, uint32_t len, uint32_t mtu, uint32_t seq,
                 struct virtio_net_hdr_mrg_rxbuf *h)
{
    const uint32_t eth = 14, ip = 20, tcp = 20;
    memcpy(f, mac_b, 6);
    memcpy(f + 6, mac_a, 6);
    put16(f + 12, 0x0800);

    uint8_t *iph = f + eth;
    uint32_t ip_len = len - eth;
    memset(iph, 0, ip);
    iph[0] = 0x45;
    put16(iph + 2, (uint16_t)ip_len);
    put16(iph + 4, (uint16_t)seq);
    put16(iph + 6, 0x4000); /* DF */
    iph[8] = 64;
    iph[9] = 6;
    put32(iph + 12, 0x0a630001); /* 10.99.0.1 */
    put32(iph + 16, 0x0a630002); /* 10.99.0.2 */
    put16(iph + 10, (uint16_t)~fold(sum16(0, iph, ip)));

    uint8_t *th = iph + ip;
    memset(th, 0, tcp);
    put16(th, 40000);
    put16(th + 2, 5201);
    put32(th + 4, seq * 1000u);
    put32(th + 8, 1);
    th[12] = 5 << 4;
    th[13] = 0x18; /* ACK PSH */
    put16(th + 14, 65535);
    for (uint32_t i = eth + ip + tcp; i < len; i++)
        f[i] = (uint8_t)(i * 7u + seq);

    /* As Linux leaves it for CHECKSUM_PARTIAL: the pseudo-header sum in the
     * checksum field, the device (or the receiver) finishes it. */
    uint32_t ps = sum16(0, iph + 12, 8) + 6u + (ip_len - ip);
    put16(th + 16, fold(ps));

    memset(h, 0, sizeof(*h));
    h->hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h->hdr.csum_start = (uint16_t)(eth + ip);
    h->hdr.csum_offset = 16;
    h->hdr.hdr_len = (uint16_t)(eth + ip + tcp);
    if (len > mtu + eth) {
        h->hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
        h->hdr.gso_size = FRAME_MSS;
    }
}
