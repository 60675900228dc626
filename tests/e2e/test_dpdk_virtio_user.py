"""Causeway's device driven by an independent virtio-net driver: DPDK's
virtio-user PMD (testpmd), no VM involved. One testpmd transmits into device
A, the link carries the frames to device B, a second testpmd receives them."""
import os
import re
import sys
import shutil
import signal
import subprocess
import time

from harness import CAUSEWAY, Skip, check, check_sanitizers

# The benchmark's helpers: /proc CPU accounting, and the switch started the
# way the launcher starts it (for an external frontend such as testpmd).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from benchlib import cpu_seconds  # noqa: E402
from cwswitch import SwitchMiddle  # noqa: E402
import dpdk_bench  # noqa: E402

TESTPMD = "dpdk-testpmd"


def testpmd_args(sock, prefix, mode, mac=None, peer=None):
    vdev = "net_virtio_user0,path=%s,queue_size=1024" % sock
    if mac:
        vdev += ",mac=" + mac
    # init:info makes the driver name the receive and transmit paths it chose.
    args = [TESTPMD, "-l", "0,1", "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", prefix,
            "--log-level=pmd.net.virtio.init:info", "--vdev", vdev, "--",
            "--total-num-mbufs=16384", "--forward-mode=%s" % mode, "--nb-cores=1"]
    return args + (["--eth-peer=0,%s" % peer] if peer else [])


def idle_cpu(pids, seconds=2):
    """CPU seconds the processes used over `seconds` with no traffic; every
    one of them must still be there."""
    before = [cpu_seconds(p) for p in pids]
    time.sleep(seconds)
    after = [cpu_seconds(p) for p in pids]
    check(None not in before + after, "a process of %r exited while idle" % pids)
    return sum(after) - sum(before)


def stop_testpmd(p):
    """testpmd without -i runs until its stdin reaches end of file."""
    p.stdin.close()
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()


def device_counters(text):
    """Every name=number of the device's last stats line."""
    lines = [ln for ln in text.splitlines() if " stats link=" in ln]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])} if lines else {}


def accumulated(text, key):
    # "Accumulated forward statistics for all ports" block, e.g. RX-packets: 123
    block = text.split("Accumulated forward statistics for all ports")[-1]
    m = re.search(key + r":\s*(\d+)", block)
    return int(m.group(1)) if m else None


def test_testpmd_txonly_to_rxonly(env):
    """The defaults (--busy-poll auto): testpmd's bursts are batches, so the
    devices open busy windows under this flood; once it stops they sleep."""
    a, b = run_txonly_to_rxonly(env, [])
    check(a.get("busy_windows", 0) > 0 and b.get("busy_windows", 0) > 0,
          "auto opened no busy window under testpmd's flood: a %r, b %r"
          % (a.get("busy_windows"), b.get("busy_windows")))


def test_testpmd_event_driven(env):
    """--busy-poll 0: purely event-driven, the same traffic arrives and no
    window ever opens."""
    a, b = run_txonly_to_rxonly(env, ["--busy-poll", "0"])
    check(a.get("busy_windows") == 0 and b.get("busy_windows") == 0,
          "--busy-poll 0 opened busy windows: a %r, b %r"
          % (a.get("busy_windows"), b.get("busy_windows")))


def test_testpmd_busy_poll(env):
    """--busy-poll: the same traffic arrives, and once it stops the devices
    go back to sleep (the window follows traffic, it is not polling at idle)."""
    run_txonly_to_rxonly(env, ["--busy-poll", "200"])


def run_txonly_to_rxonly(env, extra):
    if not shutil.which(TESTPMD):
        raise Skip("dpdk-testpmd not installed (Debian package dpdk-dev)")
    link = env.link()
    socks = {n: "%s/%s.sock" % (env.tmp, n) for n in ("a", "b")}
    devs = {}
    for n in ("a", "b"):
        devs[n] = env.spawn([CAUSEWAY, "device", "--name", n, "--socket", socks[n],
                             "--link", link] + extra, "device-" + n)
    time.sleep(0.5)
    # testpmd without -i runs until its stdin reaches end of file.
    rx = env.spawn(testpmd_args(socks["b"], "cw-rx", "rxonly"), "testpmd-rx",
                   stdin=subprocess.PIPE)
    time.sleep(3)
    tx = env.spawn(testpmd_args(socks["a"], "cw-tx", "txonly"), "testpmd-tx",
                   stdin=subprocess.PIPE)
    time.sleep(8)
    idle = None
    for p in (tx, rx):
        stop_testpmd(p)
        time.sleep(1)
        if p is tx:
            # Traffic has stopped; testpmd rx still holds device b's queues.
            idle = idle_cpu([d.pid for d in devs.values()])
    for p in devs.values():
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    out = {n: open(p.log_path).read() for n, p in
           (("a", devs["a"]), ("b", devs["b"]), ("tx", tx), ("rx", rx))}
    for n in ("a", "b"):
        check_sanitizers("device " + n, out[n], devs[n].log_path)
    sent = accumulated(out["tx"], "TX-packets")
    got = accumulated(out["rx"], "RX-packets")
    check(sent and sent > 1000, "testpmd txonly sent too little: %r (log %s)" % (sent, tx.log_path))
    check(got and got > 1000, "testpmd rxonly received too little: %r (log %s)" % (got, rx.log_path))
    a, b = device_counters(out["a"]), device_counters(out["b"])
    check(a.get("tx_frames", 0) >= sent * 0.9,
          "device a forwarded %r of %d" % (a.get("tx_frames"), sent))
    check(b.get("rx_frames", 0) >= got,
          "device b delivered %r, testpmd counted %d" % (b.get("rx_frames"), got))
    check(idle < 0.1, "devices %s used %.2f CPU-s in 2 s without traffic" % (extra, idle))
    # The device offers VIRTIO_F_IN_ORDER: the driver must have taken its
    # in-order paths, so the frames above crossed them.
    for n, path in (("tx", "Tx"), ("rx", "Rx")):
        check("using inorder %s path" % path in out[n],
              "testpmd %s did not take its in-order %s path (log %s)"
              % (n, path, (tx if n == "tx" else rx).log_path))
    return a, b


def test_testpmd_through_switch_busy_poll(env):
    """The switch's busy window: testpmd txonly into device a, through a
    `causeway switch` (started as bench/cwswitch.py starts it, the way the
    launcher does), out of device b into testpmd rxonly; every process with
    --busy-poll. The frames arrive, none is dropped by the switch, and once
    traffic stops the three processes sleep again."""
    if not shutil.which(TESTPMD):
        raise Skip("dpdk-testpmd not installed (Debian package dpdk-dev)")
    mac_a, mac_b = "52:54:00:99:00:0a", "52:54:00:99:00:0b"
    socks = {n: "%s/%s.sock" % (env.tmp, n) for n in ("a", "b")}
    mid = SwitchMiddle(CAUSEWAY, [("a", socks["a"], mac_a), ("b", socks["b"], mac_b)], env.tmp,
                       "sw", 1, ["--busy-poll", "200"])
    try:
        rx = env.spawn(testpmd_args(socks["b"], "cw-swrx", "rxonly", mac_b), "testpmd-rx",
                       stdin=subprocess.PIPE)
        time.sleep(3)
        tx = env.spawn(testpmd_args(socks["a"], "cw-swtx", "txonly", mac_a, mac_b), "testpmd-tx",
                       stdin=subprocess.PIPE)
        time.sleep(8)
        stop_testpmd(tx)
        time.sleep(1)
        idle = idle_cpu(mid.pids())
        stats = mid.switch_stats()
        stop_testpmd(rx)
    finally:
        mid.stop()
    logs = {n: os.path.join(env.tmp, "sw-%s.log" % n) for n in ("switch", "device-a", "device-b")}
    for n, path in logs.items():
        check_sanitizers(n, open(path).read(), path)
    got = accumulated(open(rx.log_path).read(), "RX-packets")
    check(got and got > 1000, "testpmd rxonly received too little: %r (log %s)" % (got, rx.log_path))
    check(stats is not None, "the switch did not answer a stats request")
    # A full destination ring (no_room) is congestion, which txonly at full
    # speed may cause; anything else would mean the switch saw bad frames.
    drops = {k: v for port in stats.get("ports", []) for k, v in port.get("drops", {}).items()
             if v and k != "no_room"}
    check(not drops, "the switch dropped frames: %r" % drops)
    fwd = sum(port.get("tx_frames", 0) for port in stats.get("ports", []))
    check(fwd >= got, "the switch forwarded %d frames, testpmd received %r" % (fwd, got))
    check(idle < 0.1, "switch and devices used %.2f CPU-s in 2 s without traffic" % idle)


def test_testpmd_tso_frames_cross_whole(env):
    """A 64 KiB TSO frame from a real driver crosses the link as one frame
    with its virtio_net_hdr: testpmd sends 65000-byte TCP frames out of
    virtio-user port A with TSO requested (gso TCPV4 on the ring), port B has
    LRO on (GUEST_TSO4) and must receive each one whole, never segmented."""
    got, a, b = run_tso(env, lro=True)
    check(got[0] > 100, "port B received too few frames: %r" % (got,))
    check(got[1] == got[0] * dpdk_bench.TSO_FRAME,
          "port B received %d bytes in %d frames: not whole %d-byte frames"
          % (got[1], got[0], dpdk_bench.TSO_FRAME))
    check(b.get("sw_segments") == 0, "device b segmented frames for a driver with LRO: %r" % b)
    check(b.get("rx_frames", 0) >= got[0], "device b delivered %r, port B counted %d"
          % (b.get("rx_frames"), got[0]))


def test_testpmd_tso_segmented_for_a_driver_without_lro(env):
    """The same TSO frames towards a driver that did not take GUEST_TSO4
    (port B without LRO): device b cuts each into MSS-sized TCP segments in
    software, so port B receives frames of at most one MTU, about 45 per
    65000-byte frame sent."""
    got, a, b = run_tso(env, lro=False)
    mtu_frame = 14 + 20 + 20 + dpdk_bench.TSO_MSS
    check(got[0] > 1000, "port B received too few frames: %r" % (got,))
    check(got[1] <= got[0] * mtu_frame, "port B received %d bytes in %d frames: larger than "
          "%d-byte segments" % (got[1], got[0], mtu_frame))
    check(b.get("sw_segments", 0) >= got[0], "device b made %r segments, port B received %d"
          % (b.get("sw_segments"), got[0]))
    whole = a.get("tx_frames", 0)
    per = -(-(dpdk_bench.TSO_FRAME - 54) // dpdk_bench.TSO_MSS)
    check(whole > 0 and b["sw_segments"] <= whole * per,
          "device b made %d segments of %d frames (at most %d each)"
          % (b["sw_segments"], whole, per))


def run_tso(env, lro):
    """testpmd's tso edge (dpdk_bench) through two linked devices for 3 s.
    Returns ((frames, bytes) port B received, device a's and b's counters)."""
    if not shutil.which(TESTPMD):
        raise Skip("dpdk-testpmd not installed (Debian package dpdk-dev)")
    link = env.link()
    devs = {}
    for n, mac in (("A", dpdk_bench.MAC_A), ("B", dpdk_bench.MAC_B)):
        devs[n] = env.spawn([CAUSEWAY, "device", "--name", n.lower(), "--socket",
                             "%s/%s.sock" % (env.tmp, n), "--link", link, "--mac", mac],
                            "device-" + n.lower())
    time.sleep(0.5)
    edge = dpdk_bench.Interactive(
        dpdk_bench.edge_args("tso", env.tmp, dpdk_bench.TSO_FRAME, "cw-tso%d" % os.getpid()),
        os.path.join(env.log_dir, "testpmd.log"))
    try:
        edge.wait_prompt(0, 120)
        dpdk_bench.start_tso(edge, "tso", lro)
        time.sleep(3)
        before = dpdk_bench.port_stats(edge.cmd("show port stats all"))
        time.sleep(2)
        after = dpdk_bench.port_stats(edge.cmd("show port stats all"))
        edge.cmd("stop")
    finally:
        edge.close()
        shutil.rmtree("/var/run/dpdk/cw-tso%d" % os.getpid(), ignore_errors=True)
    for p in devs.values():
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    text = {n: open(p.log_path).read() for n, p in devs.items()}
    for n, p in devs.items():
        check_sanitizers("device " + n, text[n], p.log_path)
    b_port = dpdk_bench.TSO_B
    check(b_port in before and b_port in after,
          "no port statistics from testpmd (log %s)" % edge.log.name)
    got = (after[b_port][0] - before[b_port][0], after[b_port][1] - before[b_port][1])
    a, b = device_counters(text["A"]), device_counters(text["B"])
    check(a and b, "a device printed no stats line (logs %s, %s)"
          % (devs["A"].log_path, devs["B"].log_path))
    drops = {k: v for k, v in list(a.items()) + list(b.items()) if k.startswith("drop_") and v}
    check(not drops, "the devices dropped frames: %r" % drops)
    return got, a, b
