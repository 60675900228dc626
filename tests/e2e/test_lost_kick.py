"""A driver that posts a frame and never rings the doorbell: the device's
100 ms re-poll must still send it, and count it as unannounced work.

The frontend is a minimal vhost-user client written here (no QEMU): it is
the only way to leave out a kick on purpose. Without the re-poll the frame
would wait forever, so this test fails on a device that only trusts
notifications."""
import mmap
import os
import re
import signal
import socket
import struct
import time

from harness import CAUSEWAY, check, check_sanitizers

# vhost-user requests (QEMU docs/interop/vhost-user.rst)
GET_FEATURES, SET_FEATURES, SET_OWNER, SET_MEM_TABLE = 1, 2, 3, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL = 8, 9, 10, 12, 13
VERSION = 0x1
REPLY = 0x4
VIRTIO_F_VERSION_1 = 1 << 32

MEM = 2 << 20
UVA = 0x7F0000000000      # the frontend's "virtual address" of guest memory
NUM = 16                  # queue size
# guest-physical layout: per queue desc, avail, used; then one TX buffer
RINGS = {0: (0x0000, 0x1000, 0x2000), 1: (0x3000, 0x4000, 0x5000)}
TXBUF = 0x10000
HDR_LEN = 12              # virtio_net_hdr_mrg_rxbuf (VERSION_1)


class Frontend:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(50):
            try:
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise OSError("cannot connect to %s" % path)

    def send(self, req, payload=b"", fds=()):
        msg = struct.pack("<III", req, VERSION, len(payload)) + payload
        if fds:
            socket.send_fds(self.s, [msg], list(fds))
        else:
            self.s.sendall(msg)

    def reply_u64(self, req):
        hdr = self.s.recv(12, socket.MSG_WAITALL)
        r, flags, size = struct.unpack("<III", hdr)
        check(r == req and flags & REPLY and size == 8, "bad reply to %d: %r" % (req, hdr))
        return struct.unpack("<Q", self.s.recv(8, socket.MSG_WAITALL))[0]


def test_frame_without_kick_is_sent_by_the_repoll(env):
    link = env.link()
    socks = {n: "%s/%s.sock" % (env.tmp, n) for n in ("a", "b")}
    devs = {n: env.spawn([CAUSEWAY, "device", "--name", n, "--socket", socks[n], "--link", link],
                         "device-" + n) for n in ("a", "b")}
    fd = os.memfd_create("lost-kick-guest", 0)
    os.ftruncate(fd, MEM)
    mem = mmap.mmap(fd, MEM)
    fe = Frontend(socks["a"])
    try:
        fe.send(GET_FEATURES)
        offered = fe.reply_u64(GET_FEATURES)
        check(offered & VIRTIO_F_VERSION_1, "device does not offer VERSION_1: %#x" % offered)
        fe.send(SET_FEATURES, struct.pack("<Q", VIRTIO_F_VERSION_1))  # no EVENT_IDX, no MRG
        fe.send(SET_OWNER)
        fe.send(SET_MEM_TABLE, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, MEM, UVA, 0),
                [fd])
        kicks = {}
        for q, (d, a, u) in RINGS.items():
            fe.send(SET_VRING_NUM, struct.pack("<II", q, NUM))
            fe.send(SET_VRING_ADDR, struct.pack("<IIQQQQ", q, 0, UVA + d, UVA + u, UVA + a, 0))
            fe.send(SET_VRING_BASE, struct.pack("<II", q, 0))
            call = os.eventfd(0, os.EFD_NONBLOCK)
            kicks[q] = os.eventfd(0, os.EFD_NONBLOCK)
            fe.send(SET_VRING_CALL, struct.pack("<Q", q), [call])
            fe.send(SET_VRING_KICK, struct.pack("<Q", q), [kicks[q]])
        time.sleep(0.5)  # let the device start the queues and go idle

        # One TX chain: header + a 60-byte broadcast frame, published, no kick.
        frame = b"\xff" * 6 + bytes.fromhex("525400000001") + b"\x08\x06" + bytes(46)
        mem[TXBUF:TXBUF + HDR_LEN + len(frame)] = bytes(HDR_LEN) + frame
        d, a, u = RINGS[1]
        mem[d:d + 16] = struct.pack("<QIHH", TXBUF, HDR_LEN + len(frame), 0, 0)
        mem[a + 4:a + 6] = struct.pack("<H", 0)          # ring[0] = descriptor 0
        mem[a + 2:a + 4] = struct.pack("<H", 1)          # avail->idx = 1
        t0 = time.monotonic()
        used = 0
        while time.monotonic() - t0 < 2.0:
            used = struct.unpack("<H", mem[u + 2:u + 4])[0]
            if used == 1:
                break
            time.sleep(0.01)
        waited = time.monotonic() - t0
        check(used == 1, "the device never took the unannounced frame (used idx %d after %.1f s)"
              % (used, waited))
        check(waited < 0.5, "the frame waited %.2f s, more than the re-poll period allows" % waited)
        # Counted once the next ticks pass without a notification for it.
        m = []
        t1 = time.monotonic()
        while time.monotonic() - t1 < 2.0:
            devs["a"].send_signal(signal.SIGUSR1)
            time.sleep(0.1)
            text = open(devs["a"].log_path).read()
            m = re.findall(r"tx_frames=(\d+).*unannounced_work=(\d+)", text)
            if m and m[-1] == ("1", "1"):
                break
        check(m and m[-1] == ("1", "1"), "device a's stats: %r (log %s)" % (m, devs["a"].log_path))
        print("  counted %.2f s after the frame was taken" % (time.monotonic() - t1))
        check("no notification announced" in text, "no log line for the unannounced frame")
    finally:
        fe.s.close()
        mem.close()
        os.close(fd)
        for p in devs.values():
            p.send_signal(signal.SIGTERM)
            p.wait(10)
    for n, p in devs.items():
        check_sanitizers("device " + n, open(p.log_path).read(), p.log_path)
