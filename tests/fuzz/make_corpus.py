#!/usr/bin/env python3
"""Generate the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Each seed is a valid or near-valid input in the layout its target's header
comment documents: a working queue, a well-formed TSO frame, a QEMU-like
vhost-user start-up, and one step off each (a loop in a chain, a checksum
offset past the end, a message with an fd too many). libFuzzer starts from
these instead of from nothing, and the replay tests run them on every build.

Usage: tests/fuzz/make_corpus.py [OUT_DIR]   (default: tests/fuzz/corpus)
Deterministic: the same files every run, named by content. Files named
regress-* (inputs that once found a bug, added by hand) are left alone.
"""
import hashlib
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

u8 = lambda v: struct.pack("<B", v & 0xFF)
u16 = lambda v: struct.pack("<H", v & 0xFFFF)
u32 = lambda v: struct.pack("<I", v & 0xFFFFFFFF)
u64 = lambda v: struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)

seeds = {}


def add(target, name, data):
    seeds.setdefault(target, []).append((name, bytes(data)))


# ---------------------------------------------------------------- frames

def csum(data, init=0):
    s = init
    if len(data) % 2:
        data = data + b"\0"
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def eth(ethertype, vlan=False):
    h = bytes.fromhex("525400000002") + bytes.fromhex("525400000001")
    if vlan:
        h += struct.pack(">HH", 0x8100, 5)
    return h + struct.pack(">H", ethertype)


def tcp_hdr(seq=1000, flags=0x18, opts=b""):
    doff = (20 + len(opts)) // 4
    return struct.pack(">HHIIBBHHH", 40000, 5001, seq, 1, doff << 4, flags, 65535, 0, 0) + opts


def ipv4_tcp(payload, vlan=False, flags=0x18, frag=0x4000, opts=b"", fill_csum=True):
    tcp = tcp_hdr(flags=flags, opts=opts) + payload
    tot = 20 + len(tcp)
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, tot, 0x1234, frag, 64, 6, 0,
                               bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))
    ip[10:12] = struct.pack(">H", (~csum(bytes(ip))) & 0xFFFF)
    tcp = bytearray(tcp)
    if fill_csum:
        ps = csum(bytes(ip[12:20]) + struct.pack(">HH", 6, len(tcp)))
        tcp[16:18] = struct.pack(">H", ps)  # partial: pseudo-header sum, as NEEDS_CSUM wants
    return eth(0x0800, vlan) + bytes(ip) + bytes(tcp)


def ipv6_tcp(payload, vlan=False, flags=0x18):
    tcp = bytearray(tcp_hdr(flags=flags) + payload)
    src = bytes.fromhex("fd000000000000000000000000000001")
    dst = bytes.fromhex("fd000000000000000000000000000002")
    ip = struct.pack(">IHBB16s16s", 0x60000000, len(tcp), 6, 64, src, dst)
    ps = csum(src + dst + struct.pack(">IBBBB", len(tcp), 0, 0, 0, 6))
    tcp[16:18] = struct.pack(">H", ps)
    return eth(0x86DD, vlan) + ip + bytes(tcp)


def udp4(payload):
    udp = struct.pack(">HHHH", 5353, 5353, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                               bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))
    ip[10:12] = struct.pack(">H", (~csum(bytes(ip))) & 0xFFFF)
    return eth(0x0800) + bytes(ip) + udp


def vnet_hdr(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0, nbuf=0,
             mrg=True):
    h = struct.pack("<BBHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)
    return h + (struct.pack("<H", nbuf) if mrg else b"")


PAY = bytes((i * 7 + 3) & 0xFF for i in range(4000))
NEEDS_CSUM, DATA_VALID = 1, 2
GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_ECN = 1, 3, 4, 0x80


# ---------------------------------------------------------------- fuzz_offload
# mode, virtio_net_hdr(10), u16 seg_buf_len, u8 stop_at, u32 csum_init, frame

def offload(name, frame, hdr, mode=0, sbl=0, stop=0, init=0):
    add("offload", name, u8(mode) + hdr + u16(sbl) + u8(stop) + u32(init) + frame)


f4 = ipv4_tcp(PAY[:3000])
f6 = ipv6_tcp(PAY[:2500], vlan=True)
offload("tso4", f4, vnet_hdr(NEEDS_CSUM, GSO_TCPV4, 54, 1000, 34, 16, mrg=False))
offload("tso4_ecn_cwr_fin", ipv4_tcp(PAY[:2500], flags=0x99),
        vnet_hdr(NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, 54, 1448, 34, 16, mrg=False))
offload("tso6_vlan", f6, vnet_hdr(NEEDS_CSUM, GSO_TCPV6, 78, 1200, 58, 16, mrg=False))
offload("tso4_vlan_opts", ipv4_tcp(PAY[:1777], vlan=True, opts=b"\x01\x01\x08\x0a" + b"\0" * 8),
        vnet_hdr(0, GSO_TCPV4, 0, 500, mrg=False))
offload("tso4_small_payload", ipv4_tcp(PAY[:100]), vnet_hdr(0, GSO_TCPV4, 0, 1448, mrg=False))
offload("tso4_header_only", ipv4_tcp(b""), vnet_hdr(0, GSO_TCPV4, 0, 1448, mrg=False))
offload("tso4_mss1", ipv4_tcp(PAY[:40]), vnet_hdr(0, GSO_TCPV4, 0, 1, mrg=False))
offload("tso4_padded", ipv4_tcp(PAY[:10]) + b"\0" * 20, vnet_hdr(0, GSO_TCPV4, 0, 4, mrg=False))
offload("tso4_stop_at_1", f4, vnet_hdr(0, GSO_TCPV4, 0, 1000, mrg=False), mode=1, stop=1)
offload("tso4_segbuf_small", f4, vnet_hdr(0, GSO_TCPV4, 0, 1000, mrg=False), mode=2, sbl=1000)
offload("tso4_segbuf_exact", f4, vnet_hdr(0, GSO_TCPV4, 0, 1000, mrg=False), mode=2, sbl=1054)
offload("tso4_fragment", ipv4_tcp(PAY[:500], frag=0x2000), vnet_hdr(0, GSO_TCPV4, 0, 100, mrg=False))
offload("tso4_truncated", f4[:60], vnet_hdr(0, GSO_TCPV4, 0, 100, mrg=False))
offload("tso_wrong_family", f4, vnet_hdr(0, GSO_TCPV6, 0, 100, mrg=False))
offload("tso_udp", udp4(PAY[:300]), vnet_hdr(0, GSO_UDP, 0, 100, mrg=False))
bad_ihl = bytearray(f4)
bad_ihl[14] = 0x4F
offload("tso4_bad_ihl", bytes(bad_ihl), vnet_hdr(0, GSO_TCPV4, 0, 100, mrg=False))
bad_doff = bytearray(ipv4_tcp(PAY[:50]))
bad_doff[14 + 20 + 12] = 0xF0
offload("tso4_bad_doff", bytes(bad_doff), vnet_hdr(0, GSO_TCPV4, 0, 10, mrg=False))
offload("csum_udp", udp4(PAY[:333]), vnet_hdr(NEEDS_CSUM, 0, 0, 0, 34, 6, mrg=False), init=0xFFFF)
offload("csum_field_at_end", PAY[:100], vnet_hdr(NEEDS_CSUM, 0, 0, 0, 90, 8, mrg=False), init=1)
offload("csum_field_past_end", PAY[:100], vnet_hdr(NEEDS_CSUM, 0, 0, 0, 90, 9, mrg=False))
offload("csum_zero_sum", b"\0" * 64, vnet_hdr(NEEDS_CSUM, 0, 0, 0, 14, 0, mrg=False))
offload("csum_odd", PAY[:77], vnet_hdr(NEEDS_CSUM, 0, 0, 0, 3, 70, mrg=False), init=0xFFFFFFFF)
offload("empty", b"", vnet_hdr(NEEDS_CSUM, GSO_TCPV4, 0, 1, 0, 0, mrg=False))


# ---------------------------------------------------------------- fuzz_virtq
# cfg, num_sel, u16 last_avail, u16 ops_len, ops, [u64 base], [3 x u32], image

F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4


def vq_layout(num):
    d = 0
    a = 16 * num
    u = (a + 6 + 2 * num + 3) & ~3
    bufs = (u + 6 + 8 * num + 15) & ~15
    return d, a, u, bufs


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr & (2**64 - 1), length, flags, nxt)


def harness_msize(num, image_len):
    """The region size fuzz_virtq picks: rings + 8 KiB, or the image if larger."""
    _, _, u, _ = vq_layout(min(num, 1024))
    return min(max(u + 6 + 8 * min(num, 1024) + 8192, image_len), 1 << 20)


class Image:
    def __init__(self, size):
        self.b = bytearray(size)

    def put(self, off, data):
        self.b[off:off + len(data)] = data


def virtq(name, cfg, num_log, ops, chains, base=0, avail_idx=None, last_avail=0, used_idx=0,
          used_event=None, avail_flags=0, extra=None, raw_num=None, roff=None, image_size=None,
          fail_after=None):
    """chains: list of descriptor lists for the queue table: [(slot, addr_off, len, flags, next)].
    Offsets are relative to the region base. heads: avail ring entries."""
    num = raw_num if raw_num is not None else 2 << num_log
    n = min(num, 1024) if num else 2
    d, a, u, bufs = vq_layout(n)
    img = Image(image_size or (bufs + 8192))
    heads = []
    for ch in chains:
        for (slot, addr_off, length, flags, nxt) in ch["descs"]:
            img.put(d + 16 * slot, desc(base + addr_off, length, flags, nxt))
        if "table" in ch:
            toff, entries = ch["table"]
            for i, (addr_off, length, flags, nxt) in enumerate(entries):
                img.put(toff + 16 * i, desc(base + addr_off, length, flags, nxt))
        heads.append(ch["head"])
    for i, h in enumerate(heads):
        img.put(a + 4 + 2 * ((last_avail + i) % n), u16(h))
    idx = avail_idx if avail_idx is not None else last_avail + len(heads)
    img.put(a, u16(avail_flags) + u16(idx))
    if used_event is not None:
        img.put(a + 4 + 2 * n, u16(used_event))
    img.put(u + 2, u16(used_idx))
    if extra:
        for off, data in extra:
            img.put(off, data)
    num_sel = num_log if raw_num is None else 0x80
    out = u8(cfg) + u8(num_sel) + u16(last_avail) + u16(len(ops)) + ops
    if raw_num is not None:
        out += u16(raw_num)
    if (cfg >> 4) & 3 == 3:
        out += u64(base)
    if cfg & 8:
        out += b"".join(u32(x) for x in roff)
    if cfg & 0x40:
        out += u16(fail_after - 1)
    return out + bytes(img.b)


# ops: 0 pop, 1 drain, 2 push(u32), 3 flush, 4 need_irq, 5 notify(u8), 6 read_out(u16,u16),
#      7 write_in(u16,u16,u8), 8 guest write(u32,u8 n,bytes), 9 unpop(u8), 10 unpush(u8),
#      11 restart, 12 avail_count, 13 hostile push(u16,u32), 14 out_ptr(u16,u16),
#      15 in_ptr(u16,u16)
def ops(*items):
    return b"".join(items)


POP, DRAIN, FLUSH, IRQ, RESTART, COUNT = u8(0), u8(1), u8(3), u8(4), u8(11), u8(12)
push = lambda ln: u8(2) + u32(ln)
notify = lambda en: u8(5) + u8(en)
read_out = lambda off, ln: u8(6) + u16(off) + u16(ln)
write_in = lambda off, ln, seed=1: u8(7) + u16(off) + u16(ln) + u8(seed)
gwrite = lambda off, data: u8(8) + u32(off) + u8(len(data)) + data
unpop = lambda n: u8(9) + u8(n)
unpush = lambda n: u8(10) + u8(n)
hpush = lambda h, ln: u8(13) + u16(h) + u32(ln)
out_ptr = lambda off, ln: u8(14) + u16(off) + u16(ln)
in_ptr = lambda off, ln: u8(15) + u16(off) + u16(ln)

STD_OPS = ops(COUNT, POP, out_ptr(0, 50), out_ptr(40, 100), in_ptr(10, 100), in_ptr(0, 2000),
              read_out(0, 200), write_in(0, 300), push(300), FLUSH, IRQ, notify(1),
              POP, notify(0), DRAIN, push(1), push(2), FLUSH, IRQ, RESTART, POP, push(0), FLUSH)

for cfg, tag in ((0x01, "translating"), (0x00, "copying"), (0x13, "translating_evidx_1m"),
                 (0x06, "copying_evidx_indirect")):
    num_log = 2  # num 8
    _, _, _, B = vq_layout(8)
    two = {"head": 0, "descs": [(0, B, 100, F_NEXT, 1), (1, B + 128, 200, F_WRITE, 0)]}
    three = {"head": 2, "descs": [(2, B + 512, 50, F_NEXT, 3), (3, B + 576, 60, F_NEXT, 4),
                                  (4, B + 640, 400, F_WRITE, 0)]}
    base = 0x100000 if (cfg >> 4) & 3 == 1 else 0
    add("virtq", "valid_" + tag, virtq("v", cfg, num_log, STD_OPS, [two, three], base=base,
                                       used_event=0))

_, _, _, B = vq_layout(8)
ind = {"head": 5, "descs": [(5, B + 1024, 48, F_INDIRECT, 0)],
       "table": (B + 1024, [(B, 64, F_NEXT, 1), (B + 64, 64, F_NEXT, 2), (B + 256, 512, F_WRITE, 0)])}
add("virtq", "indirect_ok", virtq("i", 0x05, 2, STD_OPS, [ind]))
add("virtq", "indirect_not_negotiated", virtq("i", 0x01, 2, STD_OPS, [ind]))
ind_next = {"head": 5, "descs": [(5, B + 1024, 48, F_INDIRECT | F_NEXT, 6)],
            "table": (B + 1024, [(B, 64, 0, 0)])}
add("virtq", "indirect_with_next", virtq("i", 0x05, 2, STD_OPS, [ind_next]))
ind_nested = {"head": 5, "descs": [(5, B + 1024, 32, F_INDIRECT, 0)],
              "table": (B + 1024, [(B + 1024, 32, F_INDIRECT, 0), (B, 8, 0, 0)])}
add("virtq", "indirect_nested", virtq("i", 0x04, 2, STD_OPS, [ind_nested]))
ind_loop = {"head": 5, "descs": [(5, B + 1024, 32, F_INDIRECT, 0)],
            "table": (B + 1024, [(B, 8, F_NEXT, 1), (B, 8, F_NEXT, 0)])}
add("virtq", "indirect_loop", virtq("i", 0x05, 2, STD_OPS, [ind_loop]))
ind_badlen = {"head": 5, "descs": [(5, B + 1024, 40, F_INDIRECT, 0)], "table": (B + 1024, [])}
add("virtq", "indirect_bad_len", virtq("i", 0x05, 2, STD_OPS, [ind_badlen]))

loop = {"head": 0, "descs": [(0, B, 8, F_NEXT, 1), (1, B, 8, F_NEXT, 0)]}
add("virtq", "chain_loop", virtq("l", 0x01, 2, STD_OPS, [loop]))
self_loop = {"head": 0, "descs": [(0, B, 8, F_NEXT, 0)]}
add("virtq", "chain_self_loop", virtq("l", 0x00, 2, STD_OPS, [self_loop]))
order = {"head": 0, "descs": [(0, B, 8, F_WRITE | F_NEXT, 1), (1, B + 64, 8, 0, 0)]}
add("virtq", "in_before_out", virtq("o", 0x01, 2, STD_OPS, [order]))
bad_next = {"head": 0, "descs": [(0, B, 8, F_NEXT, 9)]}
add("virtq", "next_out_of_range", virtq("n", 0x01, 2, STD_OPS, [bad_next]))
add("virtq", "head_out_of_range", virtq("h", 0x01, 2, STD_OPS, [{"head": 8, "descs": []}]))
add("virtq", "avail_idx_too_far", virtq("a", 0x01, 2, STD_OPS, [two], avail_idx=9))
outside = {"head": 0, "descs": [(0, B + 8000, 4096, 0, 0)]}
add("virtq", "buffer_past_region", virtq("b", 0x00, 2, STD_OPS, [outside]))
zero = {"head": 0, "descs": [(0, B, 0, F_NEXT, 1), (1, B + 8, 0, F_WRITE, 0)]}
add("virtq", "zero_length_descs", virtq("z", 0x01, 2, STD_OPS, [zero]))
# The region ends at 2^64 (the harness puts it there for cfg bits4-5 = 2):
# a buffer reaching the very top, and one wrapping past it.
_, _, _, Bt = vq_layout(4)
MT = harness_msize(4, 0)
TOP = (1 << 64) - MT
top_wrap = {"head": 0, "descs": [(0, MT - 1, 16, 0, 0)]}
add("virtq", "top_of_space_wrap", virtq("t", 0x21, 1, STD_OPS, [top_wrap], base=TOP, image_size=MT))
top_ok = {"head": 0, "descs": [(0, Bt, 64, F_NEXT, 1), (1, MT - 64, 64, F_WRITE, 0)]}
add("virtq", "top_of_space_ok", virtq("t", 0x20, 1, STD_OPS, [top_ok], base=TOP, image_size=MT))
# Every descriptor in one chain (num 16).
_, _, _, B16 = vq_layout(16)
longc = {"head": 0, "descs": [(i, B16 + 16 * i, 16, (F_NEXT if i < 15 else 0) | (F_WRITE if i >= 8 else 0),
                               i + 1 if i < 15 else 0) for i in range(16)]}
add("virtq", "full_length_chain", virtq("f", 0x01, 3, STD_OPS, [longc]))
# Hostile ring placement: misaligned, overlapping.
add("virtq", "rings_misaligned", virtq("m", 0x09, 2, STD_OPS, [two], roff=(8, 0, 0)))
add("virtq", "rings_overlap", virtq("m", 0x09, 2, STD_OPS, [two], roff=(0, 0, 0)))
add("virtq", "rings_outside", virtq("m", 0x08, 2, STD_OPS, [two], roff=(0, 0, 0x7FFFFFF0)))
add("virtq", "size_not_pow2", virtq("s", 0x01, 0, STD_OPS, [two], raw_num=3))
add("virtq", "size_too_big", virtq("s", 0x01, 0, STD_OPS, [], raw_num=2048))
add("virtq", "used_idx_ahead", virtq("u", 0x01, 2, STD_OPS, [two], used_idx=100))
add("virtq", "wrap_16bit", virtq("w", 0x03, 2, STD_OPS, [two, three], last_avail=0xFFFF,
                                 used_idx=0xFFFF, used_event=0xFFFF))
# The guest moves avail->idx and rewrites a descriptor between device steps.
_, A8, U8, _ = vq_layout(8)
race = ops(POP, gwrite(A8 + 2, u16(5)), POP, gwrite(16 * 1, desc(0xFFFFFFFF00000000, 8)),
           DRAIN, push(0), unpop(1), unpush(1), hpush(7, 1), FLUSH, POP)
add("virtq", "guest_races", virtq("r", 0x01, 2, race, [two, three]))
add("virtq", "guest_races_copying", virtq("r", 0x02, 2, race, [two, three], used_event=3))
# The memory table changes under the device: every gmem call fails from the
# n-th on (setup, a pop, a copy, the used ring).
for n in (2, 6, 9, 14, 20, 30):
    add("virtq", "faults_after_%d" % n, virtq("f", 0x41, 2, STD_OPS, [two, three], fail_after=n))
    add("virtq", "faults_after_%d_copying" % n, virtq("f", 0x42, 2, STD_OPS, [two, three], fail_after=n,
                                                      used_event=1))
add("virtq", "size_1024", virtq("k", 0x01, 9, STD_OPS, [{"head": 1023, "descs": [(1023, 16 * 1024 + 8192, 8, 0, 0)]}]))


# ---------------------------------------------------------------- fuzz_net
# cfg, u64 features, budget, rxsel, txsel, n_tx [nseg, lens, bytes], n_rx [u16],
# n_frames [u16 len, u8 hi, bytes], ops

FEAT = {"CSUM": 0, "GUEST_CSUM": 1, "MTU": 3, "MAC": 5, "GUEST_TSO4": 7, "GUEST_TSO6": 8,
        "GUEST_ECN": 9, "HOST_TSO4": 11, "HOST_TSO6": 12, "HOST_ECN": 13, "MRG": 15,
        "STATUS": 16, "INDIRECT": 28, "EVENT_IDX": 29, "VERSION_1": 32}


def feats(*names):
    v = 0
    for n in names:
        v |= 1 << FEAT[n]
    return v


BASIC = ("VERSION_1", "EVENT_IDX", "INDIRECT", "MAC", "STATUS")
ALL_OFF = BASIC + ("CSUM", "GUEST_CSUM", "HOST_TSO4", "HOST_TSO6", "HOST_ECN", "GUEST_TSO4",
                   "GUEST_TSO6", "GUEST_ECN", "MRG")


def net(name, cfg, features, tx=(), rx=(), frames=(), op=b"", budget=0, rxsel=4, txsel=4):
    out = u8(cfg) + u64(features) + u8(budget) + u8(rxsel) + u8(txsel)
    out += u8(len(tx))
    for segs, data in tx:
        out += u8(len(segs) - 1)
        out += b"".join(u16(s) for s in segs)
        out += data[:sum(segs)]
    out += u8(len(rx)) + b"".join(u16(s) for s in rx)
    out += u8(len(frames))
    for fr in frames:
        out += u16(len(fr)) + u8(len(fr) >> 16) + fr
    return out + op


TX, RX, FULL, NOTFULL = u8(0), u8(2), u8(4 | 8), u8(4)
RECYCLE_RX, RECYCLE_TX, STOPSTART_TX = u8(5), u8(5 | 8), u8(6 | 8)
LINK_DOWN, LINK_UP = u8(7), u8(7 | 8)
NET_OPS = TX + RX + RECYCLE_RX + RECYCLE_TX + TX + RX + FULL + TX + NOTFULL + TX + STOPSTART_TX + \
    RX + RECYCLE_RX + RX + RECYCLE_RX + RX


def pkt(frame, hdr=None, split=None):
    """A TX packet; split gives the leading segment lengths, the last takes the rest."""
    data = (hdr if hdr is not None else vnet_hdr()) + frame
    lead = split[:-1] if split else []
    return (lead + [len(data) - sum(lead)], data)


plain = eth(0x0800) + PAY[:100]
tso_frame = ipv4_tcp(PAY[:3000])
tso6_frame = ipv6_tcp(PAY[:2000], vlan=True)
small_csum = ipv4_tcp(PAY[:300])
meta_plain = vnet_hdr() + plain
meta_csum = vnet_hdr(NEEDS_CSUM, 0, 0, 0, 34, 16) + small_csum
meta_tso4 = vnet_hdr(NEEDS_CSUM, GSO_TCPV4, 54, 1000, 34, 16) + tso_frame
meta_tso6 = vnet_hdr(NEEDS_CSUM, GSO_TCPV6, 78, 700, 58, 16) + tso6_frame
meta_tso4_ecn = vnet_hdr(NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, 54, 1400, 34, 16) + ipv4_tcp(PAY[:2900], flags=0x98)
RXBUFS = [2048] * 16
BIGBUFS = [65535, 65535] + [1526] * 8

for cfg, tag in ((0x0F, "translating"), (0x0E, "copying"), (0x1F, "indirect"), (0x2F, "chained_rx")):
    add("net", "all_offloads_" + tag,
        net(tag, cfg, feats(*ALL_OFF),
            tx=[pkt(plain), pkt(small_csum, vnet_hdr(NEEDS_CSUM, 0, 0, 0, 34, 16)),
                pkt(tso_frame, vnet_hdr(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16), split=[12, 54, 3000]),
                pkt(tso6_frame, vnet_hdr(NEEDS_CSUM, GSO_TCPV6, 78, 1200, 58, 16), split=[100, 2000])],
            rx=RXBUFS, frames=[meta_plain, meta_csum, meta_tso4, meta_tso6, meta_tso4_ecn], op=NET_OPS))

# A guest without offloads: the device finishes checksums and segments TSO.
add("net", "sw_offload_no_mrg",
    net("s", 0x0F, feats(*BASIC), tx=[pkt(plain)], rx=[1600] * 30,
        frames=[meta_csum, meta_tso4, meta_tso6, meta_tso4_ecn], op=NET_OPS + RX + RECYCLE_RX + RX))
add("net", "sw_offload_mrg_small_bufs",
    net("s", 0x0F, feats(*(BASIC + ("MRG",))), rx=[256] * 64, rxsel=6,
        frames=[meta_plain, meta_csum, meta_tso4], op=NET_OPS + RX + RECYCLE_RX + RX))
add("net", "guest_csum_only",
    net("s", 0x0F, feats(*(BASIC + ("GUEST_CSUM", "MRG"))), rx=RXBUFS,
        frames=[meta_csum, meta_tso4, meta_tso6], op=NET_OPS))
add("net", "big_frames_mrg",
    net("b", 0x0F, feats(*ALL_OFF), rx=BIGBUFS,
        frames=[vnet_hdr(0, GSO_TCPV4, 54, 1448, 0, 0) + ipv4_tcp(PAY * 16)[:65000]], op=NET_OPS))
add("net", "legacy_hdr_10",
    net("l", 0x0B, feats("EVENT_IDX", "MAC", "CSUM", "GUEST_CSUM"),
        tx=[pkt(plain, vnet_hdr(mrg=False)), pkt(small_csum, vnet_hdr(NEEDS_CSUM, 0, 0, 0, 34, 16, mrg=False))],
        rx=RXBUFS, frames=[meta_plain, meta_csum], op=NET_OPS))
# Hostile TX headers: offloads not negotiated, checksum past the frame, bad GSO.
add("net", "tx_bad_offloads",
    net("t", 0x0F, feats(*BASIC + ("CSUM",)),
        tx=[pkt(tso_frame, vnet_hdr(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16)),
            pkt(plain, vnet_hdr(NEEDS_CSUM, 0, 0, 0, 110, 10)),
            pkt(plain, vnet_hdr(0, GSO_UDP, 0, 100)),
            pkt(plain, vnet_hdr(0, GSO_ECN)),
            pkt(plain, vnet_hdr(DATA_VALID | 0xF0, 0, 5, 5, 5, 5, 77)),
            pkt(b"\x01" * 5), ([0], b""),
            pkt(tso_frame, vnet_hdr(0, GSO_TCPV4, 54, 0, 0, 0))],
        rx=RXBUFS, op=NET_OPS))
# Hostile port frames: meta header lies.
add("net", "rx_bad_meta",
    net("r", 0x0F, feats(*BASIC),
        rx=RXBUFS,
        frames=[vnet_hdr(NEEDS_CSUM, 0, 0, 0, 60000, 60000) + plain,
                vnet_hdr(0, GSO_TCPV4, 0, 0) + tso_frame,
                vnet_hdr(0, GSO_UDP, 0, 100) + plain,
                vnet_hdr(0, GSO_ECN) + plain,
                vnet_hdr(0, GSO_TCPV6, 0, 100) + tso_frame,
                vnet_hdr(0, GSO_TCPV4, 0, 100) + plain,
                b"\0" * 20, b"", vnet_hdr(DATA_VALID, 0, 0, 0, 0, 0, 999) + plain],
        op=NET_OPS))
add("net", "rx_no_room",
    net("n", 0x0F, feats(*BASIC), rx=[100, 20, 5000], frames=[meta_plain, meta_tso4, meta_plain],
        op=NET_OPS))
add("net", "link_down_port_full",
    net("d", 0x07, feats(*ALL_OFF), tx=[pkt(plain)] * 5, rx=RXBUFS, frames=[meta_plain] * 3,
        op=TX + RX + LINK_UP + FULL + TX + NOTFULL + TX + LINK_DOWN + TX + RX, budget=2))
add("net", "budget_1",
    net("g", 0x0F, feats(*ALL_OFF), tx=[pkt(plain)] * 8, rx=[2048] * 8, frames=[meta_plain] * 8,
        op=(TX + RX + RECYCLE_RX + RECYCLE_TX) * 6, budget=1, rxsel=2, txsel=2))
add("net", "hostile_ring_writes",
    net("h", 0x8F, feats(*ALL_OFF), tx=[pkt(plain)] * 3, rx=RXBUFS, frames=[meta_plain, meta_tso4],
        op=TX + u8(7) + u32(0) + u8(8) + b"\xff" * 8 + TX + RX + u8(7) + u32(300) + u8(4) + b"\x07\x00\x07\x00" + RX + TX))
# Software segmentation that runs out of guest buffers midway: the rest of
# the frame's segments go out after the refill, none twice; and a driver
# reset in the middle of it.
RESET = u8(6 | 0x10)
add("net", "segment_resume_no_mrg",
    net("r", 0x0F, feats(*BASIC), rx=[1600] * 2, rxsel=1,
        frames=[meta_tso4, meta_tso6, meta_plain], op=(RX + RECYCLE_RX) * 6))
add("net", "segment_resume_mrg",
    net("r", 0x2F, feats(*(BASIC + ("MRG",))), rx=[700] * 3, rxsel=1,
        frames=[meta_tso4, meta_plain], op=(RX + RECYCLE_RX) * 6))
add("net", "segment_reset_midway",
    net("r", 0x0F, feats(*BASIC), rx=[1600] * 2, rxsel=1, tx=[pkt(plain)] * 2,
        frames=[meta_tso4, meta_plain], op=RX + RESET + RX + RECYCLE_RX + RX + TX + RESET + TX))
for k in (0, 3, 7, 20):
    add("net", "gmem_faults_%d" % k,
        net("q", 0x8F if k % 2 else 0x8E, feats(*ALL_OFF), tx=[pkt(plain), pkt(small_csum, split=[12, 30])],
            rx=[2048, 100, 100] * 4, frames=[meta_plain, meta_tso4, meta_csum],
            op=TX + u8(15) + u8(k) + TX + RX + RECYCLE_TX + RECYCLE_RX + TX + RX))
add("net", "features_not_offered",
    net("f", 0x49, (1 << 63) | feats(*ALL_OFF), tx=[pkt(plain)], rx=RXBUFS, frames=[meta_plain], op=NET_OPS))


# ---------------------------------------------------------------- fuzz_ring
# mode, cap_sel, u32 max_record, flags, [mode 0: u32 prod, data area], ops
# ops: 0/1 peek, 2 release, 3 cons publish, 4 wait (u16 for producer), 5 woken,
#      6/7 reserve(u16, u8), 8 commit(u8), 9 publish, 10 wait space(u16), 11 hostile(...)

R_PEEK, R_REL, R_CPUB, R_WAITD, R_WOKEN, R_PUB = u8(0), u8(2), u8(3), u8(4), u8(5), u8(9)
r_res = lambda ln, seed=0: u8(6) + u16(ln) + u8(seed)
r_commit = lambda how=0: u8(8) + u8(how)
r_wait_space = lambda ln: u8(10) + u16(ln)


def rec(length, rtype=1, payload=None):
    body = payload if payload is not None else bytes((i * 3) & 0xFF for i in range(length))
    r = u32(length) + u32(rtype) + body
    pad = (-len(r)) % 16
    return r + b"\0" * pad


def ring_consumer(name, cap_sel, max_record, prod, area, op):
    add("ring", name, u8(0) + u8(cap_sel) + u32(max_record) + u8(0) + u32(prod) + area + op)


cap = 4096
area = rec(100) + rec(0) + rec(1000)
ring_consumer("consumer_valid", 0, 1500, len(area), area + b"\0" * (cap - len(area)),
              (R_PEEK + R_REL) * 3 + R_CPUB + R_PEEK + R_WAITD + R_WOKEN)
# Records up to a PAD at the end, then the area's first record again at offset 0
# (the free-running index passes the capacity).
tail = cap - 256
wrapped = rec(300) + rec(1000) * 3 + rec(488)
assert len(wrapped) == tail
wrapped += u32(256 - 8) + u32(2) + b"\0" * (256 - 8)
ring_consumer("consumer_pad_wrap", 0, 1500, cap + 320, wrapped, (R_PEEK + R_REL) * 7 + R_CPUB)
bad_pad = wrapped[:tail] + u32(100) + u32(2) + b"\0" * 248
ring_consumer("consumer_pad_bad_len", 0, 1500, cap + 320, bad_pad, (R_PEEK + R_REL) * 7)
ring_consumer("consumer_len_too_big", 0, 500, 1024, rec(600) + b"\0" * (cap - 624), R_PEEK + R_REL + R_PEEK)
ring_consumer("consumer_prod_misaligned", 0, 500, 17, rec(1) + b"\0" * (cap - 16), R_PEEK + R_PEEK)
ring_consumer("consumer_prod_too_far", 0, 500, cap + 16, rec(1) + b"\0" * (cap - 16), R_PEEK)
ring_consumer("consumer_record_past_prod", 0, 1500, 64, rec(1000) + b"\0" * (cap - 1024), R_PEEK)
ring_consumer("consumer_pad_at_zero", 0, 1500, 64, u32(4088) + u32(2) + b"\0" * (cap - 8), R_PEEK)
ring_consumer("consumer_bad_type", 0, 1500, 64, rec(10, rtype=7) + b"\0" * (cap - 32), R_PEEK)
ring_consumer("consumer_prod_goes_back", 0, 1500, 256, rec(100) + rec(100) + b"\0" * (cap - 256),
              R_PEEK + R_REL + u8(11) + u8(0) + u32(0) + R_PEEK + R_CPUB)
big = rec(20000)
ring_consumer("consumer_64k", 4, 30000, len(big), big + b"\0" * (65536 - len(big)), (R_PEEK + R_REL) * 2 + R_CPUB)
add("ring", "bad_max_record", u8(0) + u8(0) + u32(0xFFFFFFF0) + u8(0x80) + u32(0))

PROD_OPS = (r_res(100, 1) + r_commit() + R_PUB + r_res(2000, 2) + r_commit(1 | (50 << 1)) + R_PUB +
            r_res(2040, 3) + r_wait_space(100) + R_WOKEN + r_commit() + R_PUB + r_res(500) +
            r_commit(0xF0) + R_PUB)


def ring_producer(name, cap_sel, max_record, flags, cons, op):
    add("ring", name, u8(1) + u8(cap_sel) + u32(max_record) + u8(flags) + u32(cons) + op)


ring_producer("producer_valid", 0, 2040, 0, 0, PROD_OPS)
ring_producer("producer_init", 1, 2040, 1, 0x12345670, PROD_OPS)
ring_producer("producer_cons_ahead", 0, 2040, 0, 4096 * 3, PROD_OPS)
ring_producer("producer_cons_misaligned", 0, 2040, 2, 5, PROD_OPS)
ring_producer("producer_cons_moves",
              0, 1000, 0, 0,
              (r_res(1000) + r_commit() + R_PUB) * 3 + u8(11) + u8(0) + u32(2048) +
              (r_res(1000) + r_commit() + R_PUB) * 3 + u8(11) + u8(0) + u32(0x80000000) + r_res(10))
PAIR_OPS = ((r_res(700, 1) + r_commit() + R_PUB + R_PEEK + R_REL + R_CPUB) * 3 +
            (r_res(1500, 2) + r_commit() + R_PUB) * 2 + R_PEEK + R_REL + R_CPUB + r_res(1500, 3) +
            r_commit(1 | (9 << 1)) + R_PUB + (R_PEEK + R_REL) * 3 + R_CPUB + R_WAITD + r_wait_space(10) +
            (r_res(2000, 4) + r_commit() + R_PUB + R_PEEK + R_REL + R_CPUB) * 4)
add("ring", "pair_honest", u8(2) + u8(0) + u32(2040) + u8(1) + PAIR_OPS)
add("ring", "pair_honest_zero_len", u8(2) + u8(0) + u32(64) + u8(0) + (r_res(0) + r_commit() + R_PUB + R_PEEK + R_REL) * 300 + R_CPUB)
add("ring", "pair_corrupted", u8(2) + u8(0) + u32(2040) + u8(1) + PAIR_OPS[:40] +
    u8(11) + u8(1) + u32(16) + u32(9999) + u32(1) + PAIR_OPS)


# ---------------------------------------------------------------- fuzz_vhost
# cfg, then per message: op, fdspec, [u32 request], [u8 nregions], [u8 size for unserved],
# [u32 flags, u32 size], payload, [helpful: u16 off, u8 n, bytes], [cut: u8]

REQ = {"GET_FEATURES": 0, "SET_FEATURES": 1, "SET_OWNER": 2, "RESET_OWNER": 3, "SET_MEM_TABLE": 4,
       "SET_VRING_NUM": 5, "SET_VRING_ADDR": 6, "SET_VRING_BASE": 7, "GET_VRING_BASE": 8,
       "SET_VRING_KICK": 9, "SET_VRING_CALL": 10, "SET_VRING_ERR": 11, "GET_PROTOCOL_FEATURES": 12,
       "SET_PROTOCOL_FEATURES": 13, "GET_QUEUE_NUM": 14, "SET_VRING_ENABLE": 15, "NET_SET_MTU": 16,
       "RESET_DEVICE": 17, "SET_LOG_BASE": 18, "SET_LOG_FD": 19, "SEND_RARP": 20,
       "SET_BACKEND_REQ_FD": 21, "GET_CONFIG": 23, "RAW": 31}
NEED_REPLY, RAW_HDR, RUN = 0x20, 0x40, 0x80
K_NAT, K_MEMFD, K_PIPE, K_NULL = 0, 1, 2, 3
HELP, CUT = 0x40, 0x80


def msg(req, payload=b"", nfds=0, kind=K_NAT, helpful=True, run=False, need_reply=False, raw=None,
        nregions=None, content=None, cut=None, raw_request=None, unserved_size=None):
    op = REQ[req] | (NEED_REPLY if need_reply else 0) | (RAW_HDR if raw else 0) | (RUN if run else 0)
    spec = nfds | (kind << 4) | (HELP if helpful else 0) | (CUT if cut is not None else 0)
    out = u8(op) + u8(spec)
    if req == "RAW":
        out += u32(raw_request)
    if req == "SET_MEM_TABLE":
        out += u8(nregions)
    if unserved_size is not None:
        out += u8(unserved_size)
    if raw:
        out += u32(raw[0]) + u32(raw[1])
    out += payload
    if helpful:
        off, data = content if content else (0, b"")
        out += u16(off) + u8(len(data)) + data
    if cut is not None:
        out += u8(cut)
    return out


def state(index, num):
    return u32(index) + u32(num)


def vaddr(index, desc_off, used_off, avail_off):
    return u32(index) + u32(0) + u64(desc_off) + u64(used_off) + u64(avail_off) + u64(0)


def memtable(n):
    return u32(n) + u32(0) + b"".join(u64(0) * 4 for _ in range(n))


# Guest memory content at 0x100 (one chunk): both queues with num 2, a TX
# chain (virtio header + frame) and an RX buffer.
TXD, TXA, TXU = 0x100, 0x120, 0x130
RXD, RXA, RXU = 0x150, 0x170, 0x17C
TXBUF, RXBUF = 0x1A0, 0x1000
chunk = bytearray(0x1E8 - 0x100)


def cput(off, data):
    chunk[off - 0x100:off - 0x100 + len(data)] = data


tx_pkt = vnet_hdr() + eth(0x0800) + PAY[:46]
cput(TXD, desc(TXBUF, len(tx_pkt)))
cput(TXA, u16(0) + u16(1) + u16(0))
cput(RXD, desc(RXBUF, 1600, F_WRITE))
cput(RXA, u16(0) + u16(1) + u16(0))
cput(TXBUF, tx_pkt)
GUEST = (0x100, bytes(chunk))


def qemu_start(features, proto=True, run_last=True):
    m = [msg("GET_FEATURES"), msg("SET_OWNER")]
    if proto:
        m += [msg("GET_PROTOCOL_FEATURES"), msg("SET_PROTOCOL_FEATURES", u64(0x19)),
              msg("GET_QUEUE_NUM", need_reply=True)]
    m += [msg("SET_FEATURES", u64(features | ((1 << 30) if proto else 0)), need_reply=True),
          msg("NET_SET_MTU", u64(1500 - 68)),
          msg("SET_MEM_TABLE", memtable(1), nfds=1, nregions=1, content=GUEST, need_reply=True)]
    for q, (d, a, u) in ((0, (RXD, RXA, RXU)), (1, (TXD, TXA, TXU))):
        m += [msg("SET_VRING_NUM", state(q, 1)),
              msg("SET_VRING_ADDR", vaddr(q, d, u, a)),
              msg("SET_VRING_BASE", state(q, 0)),
              msg("SET_VRING_CALL", u64(q), nfds=1),
              msg("SET_VRING_KICK", u64(q), nfds=1, run=True)]
        if proto:
            m.append(msg("SET_VRING_ENABLE", state(q, 1), run=run_last, need_reply=True))
    return m


NETF = feats("VERSION_1", "EVENT_IDX", "INDIRECT", "MAC", "STATUS", "MRG")
start = qemu_start(NETF)
add("vhost", "qemu_start_persistent", u8(0) + b"".join(start))
add("vhost", "qemu_start_map_per_access", u8(1) + b"".join(qemu_start(feats("VERSION_1", "MAC"))))
add("vhost", "qemu_start_no_protocol", u8(0) + b"".join(qemu_start(NETF, proto=False)))
add("vhost", "qemu_start_stop_restart",
    u8(0) + b"".join(start + [msg("GET_VRING_BASE", state(1, 0)), msg("GET_VRING_BASE", state(0, 0)),
                              msg("SET_VRING_KICK", u64(1), nfds=1, run=True),
                              msg("SET_MEM_TABLE", memtable(2), nfds=2, nregions=2, content=GUEST),
                              msg("SET_VRING_KICK", u64(0), nfds=1, run=True),
                              msg("RESET_OWNER"), msg("SET_FEATURES", u64(NETF)), msg("RESET_DEVICE")]))
add("vhost", "features_change_while_running",
    u8(0) + b"".join(start + [msg("SET_FEATURES", u64(feats("VERSION_1")), run=True),
                              msg("SET_VRING_NUM", state(1, 3), run=True),
                              msg("SET_VRING_ADDR", vaddr(1, 0x2000, 0x3000, 0x2800), run=True)]))
add("vhost", "kick_pipe_and_devnull",
    u8(0) + b"".join(start[:-1] + [msg("SET_VRING_KICK", u64(1), nfds=1, kind=K_PIPE, run=True),
                                   msg("SET_VRING_CALL", u64(0), nfds=1, kind=K_NULL, run=True),
                                   msg("SET_VRING_KICK", u64(0), nfds=1, kind=K_NULL, run=True),
                                   msg("SET_VRING_ERR", u64(0), nfds=1, kind=K_PIPE, run=True)]))
add("vhost", "kick_memfd", u8(1) + b"".join(start + [msg("SET_VRING_KICK", u64(1), nfds=1, kind=K_MEMFD, run=True)]))
# Hostile frontends.
add("vhost", "too_many_fds", u8(0) + msg("SET_MEM_TABLE", memtable(8), nfds=12, nregions=8))
add("vhost", "fds_on_get_features", u8(0) + msg("GET_FEATURES", nfds=3) + msg("GET_FEATURES"))
add("vhost", "fd_count_mismatch", u8(1) + msg("SET_MEM_TABLE", memtable(2), nfds=1, nregions=2))
add("vhost", "mem_table_9_regions", u8(0) + msg("SET_MEM_TABLE", memtable(9), nfds=9, nregions=9))
add("vhost", "mem_table_raw_overlap",
    u8(0) + msg("SET_MEM_TABLE", u32(2) + u32(0) + u64(0) + u64(4096) + u64(0) + u64(0) +
                u64(2048) + u64(4096) + u64(8192) + u64(0), nfds=2, nregions=2, helpful=False))
add("vhost", "mem_table_region_past_fd",
    u8(0) + msg("SET_MEM_TABLE", u32(1) + u32(0) + u64(0) + u64(1 << 30) + u64(0) + u64(0),
                nfds=1, nregions=1, helpful=False))
add("vhost", "mem_table_wrapping",
    u8(1) + msg("SET_MEM_TABLE", u32(1) + u32(0) + u64(0xFFFFFFFFFFFFF000) + u64(0x2000) + u64(0) + u64(0),
                nfds=1, nregions=1, helpful=False))
add("vhost", "kick_without_fd", u8(0) + msg("SET_VRING_KICK", u64(0x100), helpful=False))
add("vhost", "kick_bad_bits", u8(0) + msg("SET_VRING_KICK", u64(0x201), nfds=1, helpful=False))
add("vhost", "ring_index_out_of_range", u8(0) + msg("SET_VRING_NUM", state(5, 256), helpful=False))
add("vhost", "ring_num_not_pow2", u8(0) + msg("SET_VRING_NUM", state(0, 255), helpful=False))
add("vhost", "ring_addr_before_table", u8(0) + msg("SET_VRING_NUM", state(0, 1)) + msg("SET_VRING_ADDR", vaddr(0, 0, 0, 0)))
add("vhost", "ring_addr_outside",
    u8(0) + b"".join(start[:9]) + msg("SET_VRING_NUM", state(0, 1)) +
    msg("SET_VRING_ADDR", vaddr(0, 0x7FFFFFFF, 0, 0), helpful=False))
add("vhost", "reply_flag_set", u8(0) + msg("GET_FEATURES", raw=(0x5, 0), helpful=False))
add("vhost", "bad_version", u8(0) + msg("GET_FEATURES", raw=(0x2, 0), helpful=False))
add("vhost", "size_too_large", u8(0) + msg("GET_FEATURES", raw=(0x1, 5000), helpful=False))
add("vhost", "size_wrong_for_request", u8(0) + msg("SET_FEATURES", raw=(0x1, 4), payload=u32(0), helpful=False))
add("vhost", "features_not_offered", u8(0) + msg("SET_FEATURES", u64(1 << 63), helpful=False))
add("vhost", "protocol_features_not_offered", u8(0) + msg("SET_PROTOCOL_FEATURES", u64(1 << 2), helpful=False))
add("vhost", "mtu_out_of_range", u8(0) + msg("NET_SET_MTU", u64(10), helpful=False))
add("vhost", "enable_without_protocol",
    u8(0) + msg("SET_FEATURES", u64(feats("VERSION_1"))) + msg("SET_VRING_ENABLE", state(0, 1)))
add("vhost", "unserved_requests",
    u8(0) + msg("SET_LOG_BASE", b"\0" * 8, unserved_size=8, need_reply=True, helpful=False) +
    msg("SET_PROTOCOL_FEATURES", u64(0x19)) +
    msg("SEND_RARP", b"\0" * 8, unserved_size=8, need_reply=True, helpful=False) +
    msg("SET_BACKEND_REQ_FD", nfds=1, unserved_size=0, need_reply=True, helpful=False) +
    msg("RAW", raw_request=0xFFFF, unserved_size=3, payload=b"abc", nfds=2, helpful=False) +
    msg("GET_CONFIG", b"\0" * 20, unserved_size=20, helpful=False))
add("vhost", "truncated_mid_message", u8(0) + b"".join(start[:6]) + msg("SET_VRING_ADDR", vaddr(0, 0, 0, 0), cut=4) +
    b"".join(start))
add("vhost", "stalled_mid_message", u8(0) + b"".join(start[:8]) + msg("SET_VRING_NUM", state(0, 1), cut=8 | 5) +
    b"".join(start))
add("vhost", "second_frontend", u8(1) + b"".join(start[:8]) + msg("GET_FEATURES", nfds=15, helpful=False) +
    b"".join(start[8:]))
add("vhost", "frontend_gone_before_reply",
    u8(0) + b"".join(start[:8]) + msg("SET_FEATURES", u64(NETF), need_reply=True, cut=16) +
    b"".join(start[:8]) + msg("GET_VRING_BASE", state(1, 0), cut=16) + msg("GET_FEATURES", cut=16) +
    b"".join(start))
add("vhost", "ring_grows_out_of_memory",
    u8(0) + b"".join(start[:8]) + msg("SET_VRING_NUM", state(1, 1)) +
    msg("SET_VRING_ADDR", vaddr(1, 0x3FFC0, 0x3FF00, 0x3FFE0)) + msg("SET_VRING_NUM", state(1, 10)))
add("vhost", "truncated_header", u8(1) + msg("SET_FEATURES", u64(NETF), cut=1) + msg("GET_FEATURES"))


# ---------------------------------------------------------------- fuzz_description
# JSON text, loaded as <tmp>/cfg/system.json; ../build/guest/{bzImage,initramfs.cpio.gz} exist.

import json

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
for fn in sorted(os.listdir(EXAMPLES)) if os.path.isdir(EXAMPLES) else []:
    if fn.endswith(".json"):
        with open(os.path.join(EXAMPLES, fn), "rb") as fh:
            add("description", "example_" + fn[:-5], fh.read())

K, I = "../build/guest/bzImage", "../build/guest/initramfs.cpio.gz"


def vm(name, nics, **kw):
    d = {"name": name, "kernel": K, "initrd": I, "nics": nics}
    d.update(kw)
    return d


def nic(sw, mac, dom, **kw):
    d = {"switch": sw, "mac": mac, "domain": dom}
    d.update(kw)
    return d


full = {
    "vms": [
        vm("high1", [nic("sw0", "52:54:00:00:00:01", "high", ipv4=["10.0.0.1/24", "10.1.0.1/16"],
                         ipv6="fd00::1/64", mtu=9000, offloads=False, queue_size=256),
                     nic("sw1", "52:54:00:00:01:01", "mgmt", ipv6=["fd01::1/64", "fe80::1/64"])],
           memory="512M", vcpus=2, gmem="map-per-access", accel="tcg", cmdline="console=ttyS0"),
        vm("low_1", [nic("sw0", "52:54:00:00:00:02", "low", ipv4="10.0.0.2/24", queue_size=1024)],
           memory="128M", gmem="persistent", accel="auto"),
    ],
    "switches": [{"name": "sw0"}, {"name": "sw1"}],
    "uplinks": [{"switch": "sw0", "tap": "cwtap0", "domain": "ext", "mac": "52:54:00:00:00:fe"}],
    "policy": {"rules": [
        {"from": "low", "to": "high", "proto": "udp", "dst_port": "5000-5010", "action": "allow"},
        {"from": "high", "to": "low", "proto": "tcp", "src_port": 22, "both": True, "action": "deny",
         "src": "10.0.0.0/24", "dst": "10.0.0.2/32"},
        {"from": "ext", "to": "mgmt", "proto": "icmpv6", "icmp_type": 128, "action": "allow",
         "dst": "fd01::/64"},
        {"from": "low", "to": "ext", "ethertype": "arp", "action": "allow"},
        {"from": "mgmt", "to": "ext", "ethertype": "ipv4", "proto": "icmp", "icmp_type": 8, "action": "allow"},
    ]},
    "on_failure": "stop",
}
add("description", "full", json.dumps(full, indent=1).encode())


def variant(name, mutate):
    d = json.loads(json.dumps(full))
    mutate(d)
    add("description", name, json.dumps(d, indent=1).encode())


variant("dup_mac", lambda d: d["vms"][1]["nics"][0].update(mac="52:54:00:00:00:01"))
variant("multicast_mac", lambda d: d["vms"][1]["nics"][0].update(mac="53:54:00:00:00:02"))
variant("unknown_key", lambda d: d["vms"][0].update(colour="blue"))
variant("unknown_switch", lambda d: d["vms"][0]["nics"][0].update(switch="nope"))
variant("dup_vm_name", lambda d: d["vms"][1].update(name="high1"))
variant("bad_name", lambda d: d["vms"][1].update(name="with space"))
variant("long_name", lambda d: d["vms"][1].update(name="x" * 33))
variant("prefix_host_bits", lambda d: d["policy"]["rules"][1].update(src="10.0.0.1/24"))
variant("bad_prefix_len", lambda d: d["vms"][0]["nics"][0].update(ipv4="10.0.0.1/33"))
variant("port_without_proto", lambda d: d["policy"]["rules"][0].pop("proto"))
variant("port_range_empty", lambda d: d["policy"]["rules"][0].update(dst_port="10-5"))
variant("icmp_type_with_tcp", lambda d: d["policy"]["rules"][4].update(proto="tcp"))
variant("rule_same_domain", lambda d: d["policy"]["rules"][0].update(to="low"))
variant("rule_unknown_domain", lambda d: d["policy"]["rules"][0].update(to="nowhere"))
variant("v4_addr_v6_rule", lambda d: d["policy"]["rules"][2].update(src="10.0.0.0/8"))
variant("memory_tiny", lambda d: d["vms"][0].update(memory="1M"))
variant("memory_huge", lambda d: d["vms"][0].update(memory="99999999T"))
variant("memory_garbage", lambda d: d["vms"][0].update(memory="12Q"))
variant("vcpus_zero", lambda d: d["vms"][0].update(vcpus=0))
variant("queue_size_bad", lambda d: d["vms"][0]["nics"][0].update(queue_size=300))
variant("mtu_small", lambda d: d["vms"][0]["nics"][0].update(mtu=10))
variant("kernel_missing", lambda d: d["vms"][0].update(kernel="../nope/bzImage"))
variant("tap_name_long", lambda d: d["uplinks"][0].update(tap="x" * 20))
variant("gmem_bad", lambda d: d["vms"][0].update(gmem="sometimes"))
variant("too_many_nics", lambda d: d["vms"][0].update(nics=[nic("sw0", "52:54:00:00:02:%02x" % i, "high") for i in range(5)]))
variant("wrong_types", lambda d: d.update(vms={"name": 1}))
add("description", "many_vms", json.dumps({
    "vms": [vm("vm%d" % i, [nic("sw0", "52:54:00:00:03:%02x" % i, "d%d" % (i % 3))], memory="64M")
            for i in range(40)],
    "switches": [{"name": "sw0"}]}).encode())
add("description", "syntax_error", b'{"vms": [ {"name": "a",, } ]')
add("description", "unterminated_string", b'{"vms": "abc')
add("description", "deep_nesting", b"[" * 3000 + b"]" * 3000)
add("description", "nul_byte", b'{"vms": [], "switches": [{"name": "s\\u0000w"}]}')
add("description", "empty", b"")
add("description", "not_object", b"[1, 2, 3]")
add("description", "utf8_bad", b'{"vms": [{"name": "\xff\xfe"}]}')
add("description", "dup_keys", b'{"vms": [], "vms": [], "switches": []}')


# ---------------------------------------------------------------- write

def main():
    for target, items in sorted(seeds.items()):
        d = os.path.join(OUT, target)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            # regress-*: inputs a fuzzing run found, kept as regression tests
            if not f.startswith("regress-"):
                os.unlink(os.path.join(d, f))
        for name, data in items:
            h = hashlib.sha1(data).hexdigest()[:8]
            with open(os.path.join(d, f"{name}-{h}"), "wb") as fh:
                fh.write(data)
        print(f"{target}: {len(items)} seeds")


if __name__ == "__main__":
    main()
