#!/usr/bin/env python3
"""Causeway against DPDK's own vhost-user forwarder, driven by a real
virtio driver (DPDK's virtio-user PMD), in the same topology:

    edge testpmd (CPU 0)                              source and sink at once
      net_virtio_user0 --A.sock--> MIDDLE --B.sock--> net_virtio_user1
      net_virtio_user1 --B.sock--> MIDDLE --A.sock--> net_virtio_user0

MIDDLE (CPU 1) is one of
  causeway-link:   two `causeway device` processes, one per socket, joined by --link;
  causeway-switch: a `causeway switch` and two `causeway device` processes, one
                   switch port each (started by bench/cwswitch.py the way
                   `causeway run` starts a VM's NIC);
  dpdk-io:         a second testpmd with net_vhost0/net_vhost1 in io forwarding.
  The Causeway middles run with their defaults (--busy-poll auto: a wake-up
  that finds a batch of frames opens a 100 us busy window; src/util/busy_poll.h)
  unless the name says otherwise:
  causeway-link-event: --busy-poll 0, purely event-driven (arm, sleep, wake
                   on a kick or a peer signal), the default before auto;
  causeway-link-poll, causeway-switch-poll: --busy-poll BUSY_POLL_US on every
                   process, a fixed window that any frame opens.
  Idle, every Causeway middle sleeps.

The edge drives it in one of three ways:
  flowgen: open loop. Each port generates UDP frames as fast as it can and
           counts what arrives. flowgen writes the same fixed MACs into every
           frame of both ports (00:01:02:03:04:00 -> :01, hard-coded in
           testpmd 22.11), so a switch with anti-spoofing rightly drops one
           direction or the other: this edge is for the link and DPDK only.
  loop:    closed loop. `start tx_first N` sends N bursts per port (txonly
           frames: source = the port's own MAC, destination = --eth-peer,
           i.e. the other port), then io forwarding sends every frame
           received on one port out of the other, unchanged, with retry (no
           frame is dropped at the edge). The frames in flight circulate
           through the middle, whose MAC checks they pass; the rate is the
           loop's bottleneck. Every middle runs this edge.
  tso:     TSO frames of TSO_FRAME bytes, one direction. testpmd's own
           generators cannot make them (flowgen and txonly build UDP frames
           and never set the TSO flag), so a third port replays a TCP/IPv4
           frame from a pcap file (net_pcap, infinite_rx) and `csum`
           forwarding sends it out of port A with TSO requested (`tso set
           TSO_MSS`): virtio-user puts it on the ring as one frame with a
           virtio_net_hdr (gso TCPV4), as a guest kernel does. Port B, with
           LRO on (it negotiates GUEST_TSO4), receives it whole, and forwards
           it to a net_null sink. Received = port B's frames. DPDK's
           forwarder gets `tso=1` on its net_vhost ports (off by default)
           and 64 KiB mbufs (its best here: with 2 KiB mbufs it chains 32
           per frame and moves half as many).
Each virtio-user port has a fixed MAC (mac=), the one its switch port has.

The edge testpmd runs interactively on a pseudo-terminal so that the
measurement window is exact: `start`, warm-up, `show port stats all`,
window, `show port stats all`, `stop`. Received frames (both ports) and
bytes are the deltas between the two shows over the wall time between them;
the middle's CPU time is the utime+stime delta of its processes over the
same window. Before `start`, with both virtio-user ports attached but no
traffic, the middle's CPU is sampled over an idle window too.

Usage: bench/dpdk_bench.py --build DIR --out FILE [--runs N] [--sizes 64,1500]
                           [--warmup S] [--duration S] [--idle S]
                           [--cells flowgen:causeway-link,loop:causeway-switch,...]
"""
import argparse
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import cpu_busy, cpu_total, ctx_switches, kill_group, wait_for_path, write_raw
from cwswitch import SwitchMiddle

TESTPMD = "dpdk-testpmd"
EDGE_CPU, MIDDLE_CPU = 0, 1
PROMPT = "testpmd> "
QUEUE_SIZE = 1024
MBUFS = 16384
MIDDLES = ("causeway-link", "causeway-link-event", "causeway-link-poll", "causeway-switch",
           "causeway-switch-poll",
           "dpdk-io")
# The busy window of the -poll middles (causeway device/switch --busy-poll).
BUSY_POLL_US = 100
EDGES = ("flowgen", "loop", "tso")
# tso edge: frame size (Ethernet header included; testpmd's mbufs hold at most
# 65535 bytes, so a 64 KiB frame in one mbuf tops out just below that), the MSS
# it asks the driver to segment to (MTU 1500), mbufs of that size, fewer of them.
TSO_FRAME, TSO_MSS, TSO_MBUF_SIZE, TSO_MBUFS = 65000, 1460, 65535, 4096
# tso edge ports, in --vdev order: pcap source (0), A, B, null sink (3).
TSO_A, TSO_B = 1, 2
# (edge, middle) pairs measured by default, in this order within a run.
CELLS = (("flowgen", "causeway-link"), ("flowgen", "causeway-link-event"),
         ("flowgen", "causeway-link-poll"), ("flowgen", "dpdk-io"),
         ("loop", "causeway-link"), ("loop", "causeway-link-event"), ("loop", "causeway-link-poll"),
         ("loop", "causeway-switch"),
         ("loop", "causeway-switch-poll"), ("loop", "dpdk-io"),
         ("tso", "causeway-link"), ("tso", "causeway-link-poll"), ("tso", "causeway-switch"),
         ("tso", "dpdk-io"))
# loop: bursts per port sent by `start tx_first` (32 frames each), the frames
# in flight: enough to keep every queue of the middle busy, few enough for
# the edge's TX ring (QUEUE_SIZE) and a port ring (1 MiB: ~680 frames of 1500 B).
LOOP_BURSTS = 16
# The edge's port 0 (A.sock) and port 1 (B.sock); the middle's NICs use the same.
MAC_A, MAC_B = "52:54:00:00:00:0a", "52:54:00:00:00:0b"


class Interactive:
    """testpmd -i on a pseudo-terminal: send a command, wait for the next
    prompt. A pipe would not do: testpmd's printf output is then fully
    buffered while its prompt is written directly, so a command's output
    could arrive after the prompt that is meant to follow it."""

    def __init__(self, args, log_path):
        self.log = open(log_path, "w")
        self.log.write("$ " + " ".join(args) + "\n")
        self.log.flush()
        self.buf = ""
        self.cond = threading.Condition()
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO once the last holder of the slave side exits
                break
            if not chunk:
                break
            text = chunk.decode(errors="replace")
            self.log.write(text)
            self.log.flush()
            with self.cond:
                self.buf += text
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_prompt(self, start, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                i = self.buf.find(PROMPT, start)
                if i >= 0:
                    return self.buf[start:i]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise RuntimeError("testpmd: no prompt within %ds (log %s)"
                                       % (timeout, self.log.name))
                self.cond.wait(min(left, 0.5))

    def cmd(self, line, timeout=30):
        with self.cond:
            mark = len(self.buf)
        os.write(self.master, (line + "\n").encode())
        out = self.wait_prompt(mark, timeout)
        with self.cond:
            # the next command waits for the prompt after this one
            self.buf = self.buf[:mark] + out + "\n"
        return out

    def close(self):
        try:
            os.write(self.master, b"quit\n")
        except OSError:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
        self.reader.join(5)
        os.close(self.master)
        self.log.close()


def port_stats(text):
    """{port: (rx_packets, rx_bytes, tx_packets)} from `show port stats all`."""
    out = {}
    for m in re.finditer(r"NIC statistics for port (\d+)\s*#+(.*?)\n\s*#{20,}", text, re.S):
        body = m.group(2)
        rx = re.search(r"RX-packets:\s*(\d+)", body)
        rb = re.search(r"RX-bytes:\s*(\d+)", body)
        tx = re.search(r"TX-packets:\s*(\d+)", body)
        if rx and rb and tx:
            out[int(m.group(1))] = (int(rx.group(1)), int(rb.group(1)), int(tx.group(1)))
    return out


def inet_checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_tso_pcap(path, size):
    """A pcap file with one TCP/IPv4 frame of `size` bytes from port A's MAC
    to port B's (10.99.0.1:5001 -> 10.99.0.2:5201, fixed payload), checksums
    valid: what a guest's TCP stack hands its NIC for TSO."""
    ip_len = size - 14
    payload = bytes((i * 7) & 0xFF for i in range(ip_len - 40))
    src, dst = bytes([10, 99, 0, 1]), bytes([10, 99, 0, 2])
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 1, 0x4000, 64, 6, 0, src, dst))
    ip[10:12] = struct.pack("!H", inet_checksum(bytes(ip)))
    tcp = bytearray(struct.pack("!HHIIBBHHH", 5001, 5201, 1, 0, 5 << 4, 0x18, 65535, 0, 0))
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    tcp[16:18] = struct.pack("!H", inet_checksum(pseudo + bytes(tcp) + payload))
    frame = (bytes.fromhex(MAC_B.replace(":", "")) + bytes.fromhex(MAC_A.replace(":", ""))
             + b"\x08\x00" + bytes(ip) + bytes(tcp) + payload)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))  # Ethernet
        f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)))
        f.write(frame)


def edge_args(edge_mode, tmp, size, prefix):
    """The edge testpmd's command line."""
    a = eal_args(EDGE_CPU, prefix)
    virtio = ["--vdev", "net_virtio_user0,path=%s/A.sock,queue_size=%d,mac=%s"
              % (tmp, QUEUE_SIZE, MAC_A),
              "--vdev", "net_virtio_user1,path=%s/B.sock,queue_size=%d,mac=%s"
              % (tmp, QUEUE_SIZE, MAC_B)]
    if edge_mode == "tso":
        pcap = os.path.join(tmp, "tso.pcap")
        write_tso_pcap(pcap, size)
        # ports: 0 pcap source, 1 A, 2 B, 3 sink; csum forwarding pairs 0->1, 2->3
        return a + ["--vdev", "net_pcap0,rx_pcap=%s,tx_pcap=/dev/null,infinite_rx=1" % pcap] + \
            virtio + ["--vdev", "net_null0,no-rx=1",
                      "--", "-i", "--forward-mode=csum", "--nb-cores=1",
                      "--mbuf-size=%d" % TSO_MBUF_SIZE, "--total-num-mbufs=%d" % TSO_MBUFS]
    # tx_first (loop) sends from the port's MAC to its peer address: each
    # port to the other one's MAC.
    return a + virtio + [
        "--", "-i", "--forward-mode=%s" % ("flowgen" if edge_mode == "flowgen" else "io"),
        "--txpkts=%d" % size, "--nb-cores=1",
        "--eth-peer=0,%s" % MAC_B, "--eth-peer=1,%s" % MAC_A,
        "--total-num-mbufs=%d" % MBUFS]


def tso_setup(lro=True):
    """The tso edge's set-up, after the ports came up with the defaults: port
    A may send TSO frames (and the checksum offload TSO needs), port B takes
    large frames whole (LRO: GUEST_TSO4; a driver that asks for it must also
    take GUEST_CSUM, which rx tcp_cksum gives), then csum forwarding asks for
    TSO on what leaves port A. lro=False leaves port B without it, as a driver
    that cannot take large frames: the middle must segment for it."""
    b = ["port config %d rx_offload tcp_lro on" % TSO_B,
         "port config %d rx_offload tcp_cksum on" % TSO_B,
         "port config %d rx_offload scatter on" % TSO_B] if lro else []
    return (["port stop all",
             "port config %d tx_offload tcp_tso on" % TSO_A,
             "port config %d tx_offload tcp_cksum on" % TSO_A,
             "port config %d tx_offload multi_segs on" % TSO_A] + b +
            # testpmd takes csum and tso settings only on a stopped port
            ["csum set tcp hw %d" % TSO_A,
             "tso set %d %d" % (TSO_MSS, TSO_A),
             "port start all"])


def start_tso(edge, tag, lro=True):
    """Sets the tso edge up and starts it; testpmd refusing a step is an error."""
    for line in tso_setup(lro):
        # (virtio-user has no promiscuous mode; testpmd says so at every start)
        bad = [ln for ln in edge.cmd(line).splitlines()
               if re.search(r"error|fail|not supported|please|invalid", ln, re.I)
               and "promiscuous" not in ln]
        if bad:
            raise RuntimeError("%s: testpmd refused '%s': %s" % (tag, line, bad[0].strip()))
    edge.cmd("start")


def eal_args(cpu, prefix):
    # Both lcores (main and forwarding) on one host CPU: the main lcore only
    # waits on the command line or its stdin, the forwarding lcore polls.
    return ["taskset", "-c", str(cpu), TESTPMD, "--lcores", "0@%d,1@%d" % (cpu, cpu),
            "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", prefix]


def start_middle(kind, build, tmp, logs, tag, tso=False):
    """Returns (list of stoppable things, [pids]) once both vhost-user
    sockets listen (and, for the switch, both ports are up). tso: set DPDK's
    forwarder up for the tso edge (Causeway offers TSO by default)."""
    a, b = os.path.join(tmp, "A.sock"), os.path.join(tmp, "B.sock")
    procs = []
    extra = (["--busy-poll", str(BUSY_POLL_US)] if kind.endswith("-poll") else
             ["--busy-poll", "0"] if kind.endswith("-event") else [])
    if kind.startswith("causeway-switch"):
        mid = SwitchMiddle(os.path.join(build, "causeway"),
                           [("a", a, MAC_A), ("b", b, MAC_B)], logs, tag, MIDDLE_CPU, extra)
        return [mid], mid.pids()
    if kind.startswith("causeway-link"):
        link = os.path.join(tmp, "link.sock")
        for name, sock, mac in (("a", a, MAC_A), ("b", b, MAC_B)):
            log = open(os.path.join(logs, "%s-device-%s.log" % (tag, name)), "w")
            procs.append(subprocess.Popen(
                ["taskset", "-c", str(MIDDLE_CPU), os.path.join(build, "causeway"), "device",
                 "--name", name, "--socket", sock, "--link", link, "--mac", mac] + extra,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
            log.close()
    elif kind == "dpdk-io":
        log = open(os.path.join(logs, "%s-testpmd-vhost.log" % tag), "w")
        opt = ",tso=1" if tso else ""
        mbufs = (["--mbuf-size=%d" % TSO_MBUF_SIZE, "--total-num-mbufs=%d" % TSO_MBUFS] if tso
                 else ["--total-num-mbufs=%d" % MBUFS])
        args = eal_args(MIDDLE_CPU, "cwb%d-mid" % os.getpid()) + [
            "--vdev", "net_vhost0,iface=%s,queues=1%s" % (a, opt),
            "--vdev", "net_vhost1,iface=%s,queues=1%s" % (b, opt),
            "--", "--forward-mode=io", "--nb-cores=1"] + mbufs
        log.write("$ " + " ".join(args) + "\n")
        log.flush()
        # Without -i, testpmd forwards until its stdin reaches end of file.
        procs.append(subprocess.Popen(args, stdin=subprocess.PIPE, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        log.close()
    else:
        raise RuntimeError("unknown middle %r (one of %s)" % (kind, ", ".join(MIDDLES)))
    if not (wait_for_path(a, 60) and wait_for_path(b, 60)):
        stop_middle(procs)
        raise RuntimeError("middle %s: sockets did not appear" % kind)
    # taskset execs the program, so these pids are the workers themselves
    return procs, [p.pid for p in procs]


def stop_middle(procs):
    for p in procs:
        if isinstance(p, SwitchMiddle):
            p.stop()
        elif p.stdin:
            try:
                p.stdin.close()
            except OSError:
                pass
        else:
            kill_group(p)
    for p in procs:
        if isinstance(p, SwitchMiddle):
            continue
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            kill_group(p)


def line_ns(build):
    """A cache line's one-way time between the edge's CPU and the middle's
    (bench/line_latency.c), or None when it cannot be measured. On this host
    it is ~50 or ~230 ns depending on where the hypervisor put the two vCPUs,
    and a middle's rate at small frames follows it (docs/PERFORMANCE.md)."""
    try:
        out = subprocess.run([os.path.join(build, "bench", "line_latency"), str(EDGE_CPU),
                              str(MIDDLE_CPU)], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"line_ns=([\d.]+)", out)
    return float(m.group(1)) if m else None


def one_run(edge_mode, kind, size, build, logs, run, warmup, duration, idle):
    tag = "%s-%s-%d-run%d" % (edge_mode, kind, size, run)
    line_before = line_ns(build)
    tmp = tempfile.mkdtemp(prefix="cwb-dpdk-")
    procs, pids = start_middle(kind, build, tmp, logs, tag, tso=edge_mode == "tso")
    edge = None
    switch_drops = None
    try:
        edge = Interactive(edge_args(edge_mode, tmp, size, "cwb%d-edge" % os.getpid()),
                           os.path.join(logs, tag + "-testpmd-edge.log"))
        edge.wait_prompt(0, 120)
        # Idle: drivers attached, queues set up, nothing sent.
        c0, t0 = cpu_total(pids), time.monotonic()
        time.sleep(idle)
        c1, t1 = cpu_total(pids), time.monotonic()
        idle_cpu = (c1 - c0) / (t1 - t0)
        if edge_mode == "flowgen":
            edge.cmd("start")
        elif edge_mode == "tso":
            start_tso(edge, tag)
        else:
            # retry: a full TX ring is retried, not dropped (frames lost at
            # the edge would drain the loop and measure the edge)
            edge.cmd("set fwd io retry")
            edge.cmd("start tx_first %d" % LOOP_BURSTS)
        time.sleep(warmup)
        ta = time.monotonic()
        sa = port_stats(edge.cmd("show port stats all"))
        ca, ba = cpu_total(pids), cpu_busy(MIDDLE_CPU)
        xa = ctx_switches(pids)
        sw_a = cpu_total(pids[:1]) if kind.startswith("causeway-switch") else None
        ta = (ta + time.monotonic()) / 2
        time.sleep(duration)
        tb = time.monotonic()
        sb = port_stats(edge.cmd("show port stats all"))
        cb, bb = cpu_total(pids), cpu_busy(MIDDLE_CPU)
        xb = ctx_switches(pids)
        sw_b = cpu_total(pids[:1]) if kind.startswith("causeway-switch") else None
        tb = (tb + time.monotonic()) / 2
        edge.cmd("stop")
        if kind.startswith("causeway-switch"):
            switch_drops = drops_of(procs[0].switch_stats())
    finally:
        if edge:
            edge.close()
        stop_middle(procs)
        shutil.rmtree(tmp, ignore_errors=True)
        # EAL leaves its runtime directory (config, mp socket) behind
        for side in ("edge", "mid"):
            shutil.rmtree("/var/run/dpdk/cwb%d-%s" % (os.getpid(), side), ignore_errors=True)
    line_after = line_ns(build)
    # received: what came out of the middle (both virtio ports; tso: B only)
    rx_ports, tx_ports = ((TSO_B,), (TSO_A,)) if edge_mode == "tso" else ((0, 1), (0, 1))
    if not set(rx_ports + tx_ports) <= set(sa) or not set(rx_ports + tx_ports) <= set(sb):
        raise RuntimeError("%s: could not read port statistics (log %s)" % (tag, edge.log.name))
    dt = tb - ta
    frames = sum(sb[p][0] - sa[p][0] for p in rx_ports)
    nbytes = sum(sb[p][1] - sa[p][1] for p in rx_ports)
    sent = sum(sb[p][2] - sa[p][2] for p in tx_ports)
    cpu = cb - ca
    if frames == 0:
        raise RuntimeError("%s: nothing arrived in the window (logs %s-*)" % (tag, tag))
    row = {"edge": edge_mode, "middle": kind, "size": size, "run": run, "seconds": dt,
           "mfps": frames / dt / 1e6, "gbps": nbytes * 8 / dt / 1e9,
           "tx_mfps": sent / dt / 1e6,
           "cpu_per_s": cpu / dt,
           # the middle's core busy with anything but the middle (other users' work)
           "others_on_middle_cpu_per_s": max(0.0, (bb - ba) - cpu) / dt,
           "cpu_per_mframe": cpu / (frames / 1e6) if frames else None,
           "idle_cpu_per_s": idle_cpu, "idle_seconds": t1 - t0,
           # the middle's sleeps and preemptions per thousand frames: what
           # sharing one core between processes costs
           "sleeps_per_kframe": (xb[0] - xa[0]) / (frames / 1e3) if frames else None,
           "preempts_per_kframe": (xb[1] - xa[1]) / (frames / 1e3) if frames else None,
           # the cache line between the edge's and the middle's CPU, before
           # and after the cell (None: not measured)
           "line_ns": [line_before, line_after]}
    if switch_drops is not None:
        row["switch_drops"] = switch_drops
    if sw_a is not None:
        # of the middle's CPU, the switch process's own (the rest: devices)
        row["switch_cpu_per_s"] = (sw_b - sw_a) / dt
    print("dpdk: %-7s %-15s %5d B run %d: %.3f M frames/s, %.2f Gbit/s, middle CPU %.2f s/s "
          "(%.3f s per M frames), idle CPU %.4f s/s, others on CPU %d %.2f s/s, "
          "per 1000 frames %.2f sleeps %.2f preemptions, line %s ns" % (
              edge_mode, kind, size, run, row["mfps"], row["gbps"], row["cpu_per_s"],
              row["cpu_per_mframe"] or 0, idle_cpu, MIDDLE_CPU,
              row["others_on_middle_cpu_per_s"], row["sleeps_per_kframe"] or 0,
              row["preempts_per_kframe"] or 0,
              "/".join("%.0f" % v if v is not None else "?" for v in row["line_ns"])), flush=True)
    if switch_drops:
        print("dpdk: %s %s %d B run %d: switch drops (whole run) %s" % (
            edge_mode, kind, size, run, ", ".join("%s %d" % kv for kv in sorted(switch_drops.items()))),
            flush=True)
    return row


def drops_of(stats):
    """{reason: frames} the switch dropped over the whole run (warm-up
    included), non-zero reasons only; None without a stats reply."""
    if not stats:
        return None
    out = {}
    for port in stats.get("ports", []):
        for reason, n in port.get("drops", {}).items():
            if isinstance(n, int) and n:
                out[reason] = out.get(reason, 0) + n
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--logs", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="64,1500")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--idle", type=float, default=3.0)
    ap.add_argument("--cells", default=",".join("%s:%s" % c for c in CELLS),
                    help="EDGE:MIDDLE pairs (edges: %s; middles: %s)"
                    % (", ".join(EDGES), ", ".join(MIDDLES)))
    args = ap.parse_args()
    cells = []
    for c in args.cells.split(","):
        e, _, m = c.partition(":")
        if e not in EDGES or m not in MIDDLES:
            print("dpdk: bad cell '%s': EDGE:MIDDLE, edges %s, middles %s"
                  % (c, ", ".join(EDGES), ", ".join(MIDDLES)))
            return 2
        if e == "flowgen" and m.startswith("causeway-switch"):
            print("dpdk: flowgen cannot drive a switch (its frames carry fixed MACs that the "
                  "switch's anti-spoofing drops); use loop:causeway-switch")
            return 2
        cells.append((e, m))
    if not shutil.which(TESTPMD):
        print("dpdk: %s not installed (Debian package dpdk-dev)" % TESTPMD)
        return 1
    logs = args.logs or os.path.join(os.path.dirname(args.out), "logs-dpdk")
    os.makedirs(logs, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    # Runs interleaved (run-major), so slow drift on a shared machine hits
    # every setup alike instead of one of them.
    # The tso edge has one frame size of its own; the others run every --sizes.
    plan = [(size, e, m) for size in sizes for e, m in cells if e != "tso"]
    plan += [(TSO_FRAME, e, m) for e, m in cells if e == "tso"]
    for run in range(args.runs):
        for size, edge_mode, kind in plan:
            try:
                rows.append(one_run(edge_mode, kind, size, args.build, logs, run,
                                    args.warmup, args.duration, args.idle))
            except (RuntimeError, OSError) as e:
                print("dpdk: %s %s %d B run %d failed: %s" % (edge_mode, kind, size, run, e),
                      flush=True)
                rows.append({"edge": edge_mode, "middle": kind, "size": size, "run": run,
                             "error": str(e)})
    params = {"runs": args.runs, "sizes": sizes, "warmup_s": args.warmup,
              "duration_s": args.duration, "idle_s": args.idle, "queue_size": QUEUE_SIZE,
              "edge_cpu": EDGE_CPU, "middle_cpu": MIDDLE_CPU, "mbufs": MBUFS,
              "cells": ["%s:%s" % c for c in cells], "loop_bursts": LOOP_BURSTS,
              "loop_frames_per_port": LOOP_BURSTS * 32, "busy_poll_us": BUSY_POLL_US,
              "tso_frame": TSO_FRAME, "tso_mss": TSO_MSS, "tso_mbuf_size": TSO_MBUF_SIZE,
              "tso_mbufs": TSO_MBUFS}
    write_raw(args.out, "dpdk", params, rows)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
