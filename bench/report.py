#!/usr/bin/env python3
"""Writes bench/results/RESULTS.md and one PNG chart per section from the raw
files the benchmark scripts left in RAW (bench/results/raw by default):
  machine.json  (written here on --machine, at the start of a run)
  load.txt      (load average before each section, from run.sh)
  engine.txt    (stdout of build/bench/engine_bench; its RESULT lines)
  startup.txt   (stdout of bench/startup.py)
  dpdk.json     (bench/dpdk_bench.py)
  vm.json       (bench/vm_bench.py)
A missing file makes its section say so instead of failing the report.

Usage: bench/report.py --machine RAW          (record the machine and commit)
       bench/report.py RAW OUTDIR [--quick]   (write OUTDIR/RESULTS.md + *.png)
"""
import datetime
import json
import os
import re
import subprocess
import sys

from benchlib import ROOT, summary

DPDK_REFERENCE = {64: 0.31, 1500: 0.23}  # M frames/s, measured by the issue author

VM_TESTS = [
    ("tcp1", "TCP, 1 stream, client → server"),
    ("tcp1r", "TCP, 1 stream, server → client (-R)"),
    ("tcp2", "TCP, 2 streams, client → server"),
    ("tcp2r", "TCP, 2 streams, server → client (-R)"),
    ("udp", "UDP at the offered rate, client → server"),
    ("udpr", "UDP at the offered rate, server → client (-R)"),
]
VM_SETUPS = [
    ("cw-persistent-on", "Causeway, persistent, offloads on"),
    ("cw-switch", "Causeway switch (causeway run), persistent, offloads on"),
    ("cw-persistent-off", "Causeway, persistent, offloads off"),
    ("cw-map-on", "Causeway, map-per-access, offloads on"),
    ("cw-map-off", "Causeway, map-per-access, offloads off"),
    ("cw-busy-poll", "Causeway, persistent, offloads on, busy-poll=1000"),
    ("tap", "QEMU tap + bridge (vhost=off, vnet_hdr=on)"),
    ("tap-intx", "QEMU tap + bridge, NIC on INTx (vectors=0, as Causeway's under TCG)"),
    ("loopback", "loopback inside one guest (ceiling)"),
]


def sh(args, strip=True):
    try:
        out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT).stdout
    except OSError:
        return ""
    return out.strip() if strip else out


def hypervisor(cpu_flags):
    """Who runs this machine: lscpu's vendor when the hypervisor names
    itself; a CPU flag alone says only that there is one (this host's
    hypervisor sets the flag and no vendor)."""
    vendor = sh(["sh", "-c", "lscpu | sed -n 's/^Hypervisor vendor: *//p'"])
    if vendor:
        return vendor
    return "an unnamed hypervisor's" if "hypervisor" in cpu_flags else ""


def machine():
    # the first CPU's fields ("model name", "flags", ...)
    cpuinfo = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break
            key, _, value = line.partition(":")
            cpuinfo[key.strip()] = value.strip()
    with open("/proc/meminfo") as f:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    # porcelain lines are "XY path": not stripped, or the first line loses a column
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "meson.build",
                "bench/engine", "bench/meson.build"], strip=False).splitlines()
    untracked = sh(["git", "status", "--porcelain", "--", "src"], strip=False).splitlines()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": sh(["git", "rev-parse", "--short=12", "HEAD"]),
        "commit_subject": sh(["git", "log", "-1", "--format=%s"]),
        "uncommitted": [l[3:] for l in dirty],
        "untracked_src": [l[3:] for l in untracked if l.startswith("??")],
        "cpu": cpuinfo.get("model name", ""), "cores": os.cpu_count(), "mem_gib": round(mem_kb / 1048576, 1),
        "kernel": sh(["uname", "-r"]),
        "hypervisor": hypervisor(cpuinfo.get("flags", "").split()),
        "qemu": sh(["sh", "-c", "qemu-system-x86_64 --version | head -1"]),
        "dpdk": sh(["dpkg-query", "-W", "-f=${Version}", "dpdk-dev"]),
        "iperf3_host": sh(["dpkg-query", "-W", "-f=${Version}", "iperf3"]),
        "gcc": sh(["sh", "-c", "gcc --version | head -1"]),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }


def fmt(v, digits=2):
    if v is None:
        return "–"
    if abs(v) >= 100:
        return "%.0f" % v
    return "%.*f" % (digits, v)


def cell(values, digits=2):
    """'median (min–max)' over runs, or the single value of a 1-run smoke test."""
    s = summary(values)
    if not s:
        return "–"
    med, lo, hi, n = s
    if n == 1:
        return fmt(med, digits)
    return "%s (%s–%s)" % (fmt(med, digits), fmt(lo, digits), fmt(hi, digits))


def load(raw, name):
    path = os.path.join(raw, name)
    if not os.path.exists(path):
        return None
    if name.endswith(".json"):
        with open(path) as f:
            return json.load(f)
    with open(path) as f:
        return f.read()


def plt_module():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def bar_groups(ax, groups, series, values, errs=None, ylabel=""):
    """Grouped bars: values[s][g] (None skipped), errs[s][g] = (lo, hi)."""
    n = len(series)
    width = 0.8 / max(n, 1)
    for i, s in enumerate(series):
        xs, ys, el, eh = [], [], [], []
        for j, _ in enumerate(groups):
            v = values[i][j]
            if v is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(v)
            lo, hi = errs[i][j] if errs else (v, v)
            el.append(v - lo)
            eh.append(hi - v)
        ax.bar(xs, ys, width, label=s, yerr=[el, eh] if errs else None, capsize=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


# --- sections -----------------------------------------------------------------------------

def section_engine(raw, out, md):
    md.append("## 1. The device engine alone (`build-bench/bench/engine_bench`)\n")
    text = load(raw, "engine.txt")
    if text is None:
        md.append("Not run: `engine_bench` was not built in this tree (bench/meson.build absent "
                  "or not wired into meson.build).\n")
        return
    rows = []
    for line in text.splitlines():
        if not line.startswith("RESULT engine "):
            continue
        words = line.split()[2:]
        name = [w for w in words if "=" not in w]
        kv = dict(w.split("=", 1) for w in words if "=" in w)
        rows.append((name, kv))
    if not rows:
        md.append("`engine_bench` printed no RESULT line (see raw/engine.txt).\n")
        return
    md.append("One thread moves frames guest A TX → device A → port → device B → guest B RX "
              "with simulated guests (no QEMU, no VM); each figure is engine_bench's own median "
              "over its runs, with its min–max. Gbit/s counts Ethernet frame bytes.\n")
    md.append("| scenario | variant | frame bytes | frames/s median (min–max) | Gbit/s | "
              "frames per CPU-second |")
    md.append("|---|---|---|---|---|---|")
    chart = {}
    for name, kv in rows:
        if "fps" in kv:
            fps = float(kv["fps"])
            rng = ""
            if "min_fps" in kv and "max_fps" in kv:
                rng = " (%s–%s)" % (si(float(kv["min_fps"])), si(float(kv["max_fps"])))
            md.append("| %s | %s | %s | %s%s | %s | %s |" % (
                name[0], name[1], name[2], si(fps), rng, kv.get("gbps", "–"),
                si(float(kv["cpu_fps"])) if "cpu_fps" in kv else "–"))
            if name[0] == "link":
                chart.setdefault(name[1], {})[name[2]] = (fps, float(kv.get("min_fps", fps)),
                                                          float(kv.get("max_fps", fps)))
    ratios = [(name, kv) for name, kv in rows if "fps" not in kv]
    if ratios:
        md.append("")
        for name, kv in ratios:
            md.append("- %s %s %s B: %s" % (name[0], name[1], name[2],
                                            ", ".join("%s = %s" % i for i in kv.items())))
    md.append("")
    if chart:
        plt = plt_module()
        strategies = sorted(chart)
        sizes = sorted({s for v in chart.values() for s in v}, key=int)
        fig, ax = plt.subplots(figsize=(7, 4))
        bar_groups(ax, ["%s B" % s for s in sizes], strategies,
                   [[chart[st][s][0] / 1e6 if s in chart[st] else None for s in sizes]
                    for st in strategies],
                   [[(chart[st][s][1] / 1e6, chart[st][s][2] / 1e6) if s in chart[st]
                     else (0, 0) for s in sizes] for st in strategies],
                   "M frames/s")
        ax.set_yscale("log")  # the strategies differ by two to three orders of magnitude
        ax.set_title("Device engine alone: link path, one thread")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "engine.png"), dpi=110)
        plt.close(fig)
        md.append("![engine](engine.png)\n")


def si(v):
    for unit, f in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= f:
            return "%.2f %s" % (v / f, unit)
    return "%.0f" % v


def section_startup(raw, md):
    md.append("## 2. Start-up time and device memory (`bench/startup.py`)\n")
    text = load(raw, "startup.txt")
    if text is None:
        md.append("Not run.\n")
        return
    t = re.search(r"causeway vm median ([\d.]+) \(min ([\d.]+) max ([\d.]+)\); plain QEMU "
                  r"median ([\d.]+) \(min ([\d.]+) max ([\d.]+)\)", text)
    runs = re.search(r"(\d+) runs", text)
    m = re.search(r"resident memory: (\d+) KiB outside guest RAM and port \(guest regions "
                  r"touched (\d+) KiB, port (\d+) KiB", text)
    if not t:
        md.append("startup.py did not report times; its output:\n\n```\n%s\n```\n" % text.strip())
        return
    md.append("Time from launch to the guest's `script-start` line (%s runs), same kernel, "
              "initrd, memory and firmware:\n" % (runs.group(1) if runs else "?"))
    md.append("| launcher | seconds median (min–max) |")
    md.append("|---|---|")
    md.append("| `causeway vm` (device process + QEMU + vhost-user) | %s (%s–%s) |"
              % t.group(1, 2, 3))
    md.append("| plain QEMU (virtio-net-pci on a restricted user netdev) | %s (%s–%s) |"
              % t.group(4, 5, 6))
    md.append("")
    if m:
        md.append("Idle device process, resident memory: **%s KiB** of its own (outside guest "
                  "RAM and the port); guest regions it touched: %s KiB (shared with QEMU); port "
                  "memfd: %s KiB (shared with the peer device).\n" % m.group(1, 2, 3))


DPDK_MIDDLES = [
    ("causeway-link", "Causeway link (2 device processes, default --busy-poll auto)"),
    ("causeway-link-event", "Causeway link, --busy-poll 0 (event-driven only)"),
    ("causeway-link-poll", "Causeway link, --busy-poll 100"),
    ("causeway-switch", "Causeway switch (switch + 2 device processes, default --busy-poll auto)"),
    ("causeway-switch-poll", "Causeway switch, --busy-poll 100"),
    ("dpdk-io", "DPDK vhost + io forwarding"),
]
DPDK_EDGES = [("flowgen", "flowgen (open loop)"), ("loop", "loop (tx_first + io, closed loop)"),
              ("tso", "tso (TSO frames replayed, one direction)")]
SWITCH_DPDK_TARGET = 0.60  # the issue: frames/s through the switch >= 60% of the link's
SWITCH_VM_TARGET = 0.80    # the issue: VM->VM TCP through the switch >= 80% of the link's
TAP_VM_TARGET = 1.2        # the issue: VM->VM TCP over a link >= 1.2x QEMU tap's


def dpdk_rows(d):
    """Rows with edge and middle names of this version (an older raw file
    had one edge, flowgen, and middles named causeway and dpdk)."""
    old = {"causeway": "causeway-link", "dpdk": "dpdk-io"}
    out = []
    for r in d["rows"]:
        r = dict(r)
        r.setdefault("edge", "flowgen")
        r["middle"] = old.get(r["middle"], r["middle"])
        out.append(r)
    return out


def paired_ratios(rows_a, rows_b, key, match):
    """Per-run ratios a/b of `key`, pairing rows of the same run (runs are
    interleaved, so the two rows of one run saw the same minute of load)."""
    by_run = {match(r): r[key] for r in rows_b if r.get(key)}
    return [r[key] / by_run[match(r)] for r in rows_a
            if r.get(key) is not None and by_run.get(match(r))]


def ratio_text(num, den, per_run, target=None, at_most=None):
    """'0.42 (per run 0.38–0.47)' from the medians and the per-run ratios;
    target: the ratio must be at least this, at_most: at most this."""
    if not num or not den:
        return "–"
    r = num[0] / den[0]
    text = "%.2f" % r
    if len(per_run) > 1:
        text += " (per run %.2f–%.2f)" % (min(per_run), max(per_run))
    if target is not None:
        text += ", target ≥ %.2f: %s" % (target, "met" if r >= target else "**not met**")
    if at_most is not None:
        text += ", target ≤ %.2f: %s" % (at_most, "met" if r <= at_most else "**not met**")
    return text


def paired_table(md, rows, setup_a, setup_b, heading, intro, names, tests, targets):
    """Setup a against setup b, test by test: both medians and their ratio
    with the per-run ratios. tests: (test, key, label); targets: test ->
    (at least, at most) for the ratio."""
    a_rows = [r for r in rows if r["setup"] == setup_a and "error" not in r]
    b_rows = [r for r in rows if r["setup"] == setup_b and "error" not in r]
    if not a_rows or not b_rows:
        return
    md.append("### %s\n" % heading)
    md.append(intro + "\n")
    md.append("| test | %s | %s | %s / %s |" % (names[0], names[1], names[0], names[1]))
    md.append("|---|---|---|---|")
    for test, key, label in tests:
        a = [r for r in a_rows if r["test"] == test and r.get(key) is not None]
        b = [r for r in b_rows if r["test"] == test and r.get(key) is not None]
        if not a or not b:
            continue
        digits = 3 if test == "ping" else 0
        per = paired_ratios(a, b, key, lambda r: r["run"])
        lo, hi = targets.get(test, (None, None))
        md.append("| %s | %s | %s | %s |" % (
            label, cell([r[key] for r in a], digits), cell([r[key] for r in b], digits),
            ratio_text(summary([r[key] for r in a]), summary([r[key] for r in b]), per, lo, hi)))
    md.append("")


LINE_NEAR_NS = 100  # a cache line between the two CPUs faster than this: shared cache
LINE_FAR_NS = 150   # slower than this: not


def line_phase(row):
    """'near', 'far' or None (not measured, or the two measurements of the
    cell disagree: the phase changed during it)."""
    v = row.get("line_ns") or []
    if len(v) != 2 or None in v:
        return None
    if max(v) < LINE_NEAR_NS:
        return "near"
    if min(v) > LINE_FAR_NS:
        return "far"
    return None


def section_dpdk(raw, out, md):
    md.append("## 3. Against DPDK's own forwarder, driven by a real virtio driver "
              "(`bench/dpdk_bench.py`)\n")
    d = load(raw, "dpdk.json")
    if d is None:
        md.append("Not run.\n")
        return
    p = d["params"]
    rows = dpdk_rows(d)
    md.append(
        "Topology: ONE `dpdk-testpmd` (DPDK %s) with two virtio-user ports "
        "(`net_virtio_user0/1`, `queue_size=%d`, a fixed MAC each, `--no-huge -m 1024 "
        "--no-pci`) is source and sink at once. Between its two vhost-user sockets sits the "
        "middle: a **Causeway link** (two `causeway device` processes joined by `--link`), a "
        "**Causeway switch** (a `causeway switch` with two `causeway device` processes, one "
        "port each, started by `bench/cwswitch.py` exactly as `causeway run` starts a VM's "
        "NIC: control sockets, a fresh port per NIC handed to the switch then to the device; "
        "both ports in one domain, so no policy rule is evaluated, MAC anti-spoofing on), or "
        "**DPDK**'s own forwarder (a second testpmd with `net_vhost0/1`, "
        "`--forward-mode=io`). Both kinds of middle offer VIRTIO_F_IN_ORDER, so the edge's "
        "virtio driver takes the same (in-order) receive and transmit paths against either; "
        "the features a driver is offered decide how many of the middle's cache lines it "
        "has to fetch (docs/PERFORMANCE.md, sixth pass).\n"
        % (load_machine(raw).get("dpdk", "?"), p["queue_size"]))
    md.append(
        "Three ways to drive it (the *edge*):\n\n"
        "- **flowgen** (open loop): each port generates UDP/IPv4 frames (`--txpkts` minus 4 "
        "bytes of FCS: 60 and 1496 bytes) as fast as it can and counts what arrives. testpmd "
        "22.11's flowgen writes the same hard-coded MACs into every frame of both ports "
        "(00:01:02:03:04:00 → :01), so one of the two ports always sends with a source MAC "
        "that is not its own: the switch's anti-spoofing rightly drops it. flowgen therefore "
        "drives the link and DPDK only (which ignore MACs).\n"
        "- **loop** (closed loop): `start tx_first %d` puts %d frames per port in flight "
        "(testpmd's txonly frames: source = the port's own MAC, destination = the other "
        "port's, `--txpkts` bytes: 64 and 1500), then `io` forwarding with retry sends "
        "every frame received on one port out of the other, unchanged, and never drops one. "
        "The frames circulate through the middle; the rate is the loop's bottleneck. Every "
        "middle runs this edge; **the switch/link ratio is taken from it**.\n"
        "- **tso** (open loop, one direction, 64 KiB class): testpmd's generators cannot make "
        "TSO frames (flowgen and txonly build UDP frames and never request TSO), so a third "
        "port (`net_pcap`, `infinite_rx`) replays one valid %d-byte TCP/IPv4 frame (the "
        "largest a testpmd mbuf holds) and `csum` forwarding sends it out of port A with "
        "TSO requested (`tso set %d`): DPDK's virtio-user driver puts it on the ring as one "
        "frame with a virtio_net_hdr (gso TCPV4), as a guest kernel does. Port B has LRO on "
        "(it negotiates GUEST_TSO4), so the middle delivers each frame whole; B forwards "
        "them to a `net_null` sink. Received = port B's frames. DPDK's forwarder gets "
        "`tso=1` on its `net_vhost` ports (off by default) and %d-byte mbufs, its best here. "
        "Both sides of the edge then share one core with the pcap replay, so a middle that "
        "keeps up is limited by the edge: compare CPU per frame too. The e2e tests check, "
        "on this same edge, that each frame arrives whole, and that a driver without LRO "
        "gets it cut into MSS-sized segments by the device.\n"
        % (p.get("loop_bursts", 0), p.get("loop_frames_per_port", 0),
           p.get("tso_frame", 0), p.get("tso_mss", 0), p.get("tso_mbuf_size", 0)))
    md.append(
        "Pinning (taskset): the edge testpmd's two lcores on CPU %d; the middle on CPU %d "
        "(testpmd's two lcores, or every Causeway process of the middle). So each middle has "
        "exactly one core. The DPDK forwarder busy-polls that core. Causeway's devices and "
        "switch run with their defaults (`--busy-poll auto`): they sleep in `epoll_wait` "
        "until a kick or a peer signal, and a wake-up that finds a batch of frames (32) "
        "opens a 100 µs busy window (no notification armed, polling, yielding the core when "
        "idle) that traffic keeps open; the `--busy-poll 0` row is the purely event-driven "
        "mode. Measurement: %g s "
        "warm-up after `start`, then a %g s window between two `show port stats all` "
        "(testpmd interactive on a pseudo-terminal): received frames and bytes of both ports "
        "together; Gbit/s = received frame bytes × 8 (no CRC, no preamble). Middle CPU = "
        "utime+stime of its processes from /proc/PID/stat over the same window. Idle = the "
        "middle's CPU over %g s with both virtio-user ports attached and no traffic. %d "
        "run(s) per cell, interleaved.\n"
        % (p["edge_cpu"], p["middle_cpu"], p["warmup_s"], p["duration_s"], p["idle_s"],
           p["runs"]))
    sizes = p["sizes"]

    def edge_sizes(edge):
        return [p["tso_frame"]] if edge == "tso" and "tso_frame" in p else sizes

    md.append("| edge | middle | frame | received M frames/s | Gbit/s | middle CPU s/s | "
              "middle CPU s per M frames | idle CPU s/s | others' CPU on the middle's core s/s |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    get = {}
    for edge, _ in DPDK_EDGES:
        for kind, label in DPDK_MIDDLES:
            for size in edge_sizes(edge):
                cellrows = [r for r in rows if r["edge"] == edge and r["middle"] == kind
                            and r["size"] == size]
                if not cellrows:
                    continue
                rs = [r for r in cellrows if "error" not in r]
                get[edge, kind, size] = rs
                fails = len(cellrows) - len(rs)
                md.append("| %s | %s | %d B | %s | %s | %s | %s | %s | %s |%s" % (
                    edge, label, size,
                    cell([r["mfps"] for r in rs], 3), cell([r["gbps"] for r in rs]),
                    cell([r["cpu_per_s"] for r in rs]),
                    cell([r["cpu_per_mframe"] for r in rs], 3),
                    cell([r["idle_cpu_per_s"] for r in rs], 4),
                    cell([r.get("others_on_middle_cpu_per_s") for r in rs]),
                    (" %d run(s) failed" % fails) if fails else ""))
    md.append("")
    md.append("The last column is the middle's core busy with anything else (other engineers' "
              "builds and tests: /proc/stat busy time of that CPU minus the middle's own), a "
              "per-cell measure of how disturbed the window was; a middle that got less than "
              "a whole core was slowed by it.\n")
    # The switch against the link, same edge (loop), same run.
    lines = []
    for size, suffix in ((s, x) for x in ("", "-poll") for s in sizes):
        sw = get.get(("loop", "causeway-switch" + suffix, size))
        ln = get.get(("loop", "causeway-link" + suffix, size))
        if not sw or not ln:
            continue
        per = paired_ratios(sw, ln, "mfps", lambda r: r["run"])
        lines.append("- %d B%s: switch %s vs link %s M frames/s: ratio %s" % (
            size, ", both --busy-poll" if suffix else "",
            cell([r["mfps"] for r in sw], 3), cell([r["mfps"] for r in ln], 3),
            ratio_text(summary([r["mfps"] for r in sw]), summary([r["mfps"] for r in ln]),
                       per, SWITCH_DPDK_TARGET)))
        cpu = paired_ratios(sw, ln, "cpu_per_mframe", lambda r: r["run"])
        share = [r["switch_cpu_per_s"] / r["cpu_per_s"] for r in sw
                 if r.get("switch_cpu_per_s") is not None and r.get("cpu_per_s")]
        drops = {}
        for r in sw:
            for k, v in (r.get("switch_drops") or {}).items():
                drops[k] = drops.get(k, 0) + v
        lines.append("  CPU per frame: switch %s vs link %s s per M frames, ratio %s; the switch "
                     "process's own share of the switch middle's CPU: %s; frames the switch "
                     "dropped over all its runs (warm-up included): %s." % (
                         cell([r["cpu_per_mframe"] for r in sw], 3),
                         cell([r["cpu_per_mframe"] for r in ln], 3),
                         ratio_text(summary([r["cpu_per_mframe"] for r in sw]),
                                    summary([r["cpu_per_mframe"] for r in ln]), cpu),
                         cell(share, 2),
                         ", ".join("%s %d" % kv for kv in sorted(drops.items())) or "none"))
    if lines:
        md.append("**Switch vs link** (loop edge; ratio of the medians, and the range of the "
                  "ratios of runs measured one after the other; the issue's target: frames/s "
                  "through the switch at least %d%% of the link's):\n" % (SWITCH_DPDK_TARGET * 100))
        md.extend(lines)
        md.append("")
    cw_idle = [r["idle_cpu_per_s"] for r in rows if r["middle"].startswith("causeway")
               and "idle_cpu_per_s" in r]
    if cw_idle:
        md.append("**Idle check:** Causeway's middles (link and switch) used at most %.4f CPU-s "
                  "per second (over %d idle windows of %g s; /proc/PID/stat counts in %d ms "
                  "ticks), i.e. they sleep when there is no traffic; DPDK's forwarder uses a "
                  "whole core idle or not.\n" % (max(cw_idle), len(cw_idle), p["idle_s"],
                                                 1000 // os.sysconf("SC_CLK_TCK")))
    others = summary([r.get("others_on_middle_cpu_per_s") for r in rows if "error" not in r])
    if others and others[0] > 0.2:
        md.append("**Warning:** other users' work took %.2f (%.2f–%.2f) of the middle's core "
                  "(median over all windows), so the middles ran on a fraction of a core and "
                  "the frame rates above measure that contention as much as the middles; they "
                  "swing between runs. What holds better: the idle CPU, the CPU seconds per "
                  "million frames (cost per frame, not rate) and ratios of runs measured one "
                  "after the other.\n" % others[:3])
    # Against DPDK's forwarder: the target is at least its frames/s at
    # every size. Per-run ratios pair the cells of one run, measured minutes
    # apart at most, so the machine's slow and fast phases hit both alike.
    ratio, by_phase = [], []
    for edge, _ in DPDK_EDGES:
        for size in edge_sizes(edge):
            dd = get.get((edge, "dpdk-io", size), [])
            for kind, label in DPDK_MIDDLES:
                cw = get.get((edge, kind, size), [])
                if kind == "dpdk-io" or not cw or not dd:
                    continue
                per = sorted(paired_ratios(cw, dd, "mfps", lambda r: r["run"]))
                med = summary([r["mfps"] for r in cw])[0] / summary([r["mfps"] for r in dd])[0]
                ratio.append("| %s | %d B | %s | %.2f | %s | %s |" % (
                    edge, size, label, med,
                    ", ".join("%.2f" % x for x in per) or "–",
                    "%d of %d" % (sum(x >= 1.0 for x in per), len(per))))
                # the same pairs, kept where both cells of the run saw one phase
                near, far = (sorted(paired_ratios([r for r in cw if line_phase(r) == ph],
                                                  [r for r in dd if line_phase(r) == ph],
                                                  "mfps", lambda r: r["run"]))
                             for ph in ("near", "far"))
                if near or far:
                    by_phase.append("| %s | %d B | %s | %s | %s |" % (
                        edge, size, label, ", ".join("%.2f" % x for x in near) or "–",
                        ", ".join("%.2f" % x for x in far) or "–"))
    if ratio:
        md.append("**Against DPDK's forwarder** (the issue's target: at least its frames/s at "
                  "every size): the ratio of the medians, and each run's own ratio (the "
                  "Causeway cell against the DPDK cell of the same run, measured minutes apart "
                  "at most, so a slow phase of the shared machine hits both).\n")
        md.append("| edge | frame | middle | ratio of medians | per-run ratios | runs at or "
                  "above DPDK |")
        md.append("|---|---|---|---|---|---|")
        md.extend(ratio)
        md.append("")
    if by_phase:
        md.append("**By the host's phase.** Before and after each cell the bench times a cache "
                  "line between the edge's CPU and the middle's (`bench/line_latency`): about "
                  "%d ns when the hypervisor runs this guest's two vCPUs on cores that share a "
                  "cache, about 230 ns when not, and a middle waiting on the driver's lines "
                  "moves far less in the second case. Per-run ratios where both cells of the "
                  "run saw the same phase (both measurements under %d ns: near; over %d ns: "
                  "far):\n" % (LINE_NEAR_NS // 2, LINE_NEAR_NS, LINE_FAR_NS))
        md.append("| edge | frame | middle | runs near | runs far |")
        md.append("|---|---|---|---|---|")
        md.extend(by_phase)
        md.append("")
    if "busy_poll_us" in p:
        md.append("**--busy-poll** (the `-poll` rows): every Causeway process of the middle "
                  "runs with `--busy-poll %d`: after the last frame moved it keeps polling for "
                  "%d µs with no notification armed (so the driver never kicks and no process "
                  "sleeps while traffic flows), gives the core to the other process after 1 µs "
                  "without work, and arms and sleeps when the window closes "
                  "(src/util/busy_poll.h). Its idle CPU is in the idle column.\n"
                  % (p["busy_poll_us"], p["busy_poll_us"]))
    md.append(
        "Reference: the issue author measured ~%.2f M frames/s at 64 B and ~%.2f M at 1500 B "
        "with DPDK's forwarder in this topology. The DPDK figures here are far higher; the "
        "reference run's exact settings (pinning, mbufs, machine load) are not known, so the "
        "side-by-side figures from this run, same machine and same minute, are the ones to "
        "compare.\n" % (DPDK_REFERENCE[64], DPDK_REFERENCE[1500]))
    if any(get.values()):
        plt = plt_module()
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
        groups = [(e, s) for e, _ in DPDK_EDGES for s in edge_sizes(e)
                  if any(get.get((e, k, s)) for k, _ in DPDK_MIDDLES)]
        labels = ["%s\n%d B" % g for g in groups]

        def series(key):
            vals, errs = [], []
            for k, _ in DPDK_MIDDLES:
                v, e = [], []
                for edge, s in groups:
                    sm = summary([r[key] for r in get.get((edge, k, s), [])])
                    v.append(sm[0] if sm else None)
                    e.append((sm[1], sm[2]) if sm else (0, 0))
                vals.append(v)
                errs.append(e)
            return vals, errs

        v, e = series("mfps")
        bar_groups(a1, labels, [n for _, n in DPDK_MIDDLES], v, e,
                   "received M frames/s (both directions)")
        a1.set_title("Throughput, middle on one core")
        a1.legend(fontsize=7)
        v, e = series("cpu_per_mframe")
        bar_groups(a2, labels, [n for _, n in DPDK_MIDDLES], v, e,
                   "middle CPU seconds per M frames")
        a2.set_title("CPU cost per frame")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "dpdk.png"), dpi=110)
        plt.close(fig)
        md.append("![dpdk](dpdk.png)\n")
    errs = [r for r in rows if "error" in r]
    for r in errs:
        md.append("- failed: %s %s %d B run %d: %s" % (r["edge"], r["middle"], r["size"],
                                                       r["run"], r["error"]))
    if errs:
        md.append("")


def section_vm(raw, out, md):
    md.append("## 4. VM to VM with real guests (`bench/vm_bench.py`)\n")
    d = load(raw, "vm.json")
    if d is None:
        md.append("Not run.\n")
        return
    p = d["params"]
    rows = d["rows"]
    setups = [(k, n) for k, n in VM_SETUPS if k in p["setups"]]
    md.append(
        "Each run boots fresh guests (Debian 12 cloud kernel, busybox, iperf3; %s RAM, %d "
        "vCPU, QEMU TCG `-accel tcg,thread=multi -cpu max`, qboot firmware, MTU 1500) and runs, "
        "after a warm-up, ping (%d pings at %.1f s) and iperf3 for %d s each: TCP 1 and 2 "
        "streams in both directions, UDP at an offered %sbit/s in both directions. Figures are "
        "iperf3's receiver summary. Runs are interleaved across setups. Guest addresses "
        "10.99.0.1/16 and 10.99.0.2/16.\n"
        % (p["mem"], p["cpus"], p["pings"], p["ping_interval_s"], p["seconds"], p["udp_rate"]))
    md.append(
        "- **Causeway**: `causeway vm` twice with the same link path (vhost-user NIC, queue "
        "size 1024, INTx interrupts because QEMU 7.2 under TCG crashes with vhost-user and "
        "MSI-X; devices at their default, `--busy-poll auto`), per gmem strategy and offload "
        "setting (offloads on = checksum/TSO/ECN offered to both guests).\n"
        "- **Causeway switch**: the same two VMs from one system file through `causeway run`: "
        "each VM's device process on a port of one `causeway switch` (MAC and IPv4 "
        "anti-spoofing on, both NICs in one domain so no policy rule is evaluated), gmem "
        "persistent, offloads on: compared with the link setup of the same settings, it "
        "shows what the switch costs.\n"
        "- **QEMU tap**: QEMU's best path on this host (no /dev/vhost-net): two plain QEMUs "
        "with `-netdev tap,vhost=off,vnet_hdr=on` and virtio-net-pci with its defaults "
        "(MSI-X, offloads on, RX queue 1024, TX queue 256: QEMU's maximum for tap), their "
        "taps in a Linux bridge, everything inside a network namespace the benchmark creates "
        "for the run and deletes after (`cwbench-*`); the root namespace is not touched.\n"
        "- **loopback**: iperf3 to 127.0.0.1 inside one guest (no NIC): what one TCG guest "
        "can push through its own stack, client and server on its single vCPU.\n")
    md.append("### Throughput (Mbit/s, median (min–max) over runs)\n")
    header = "| test | " + " | ".join(n for _, n in setups) + " |"
    md.append(header)
    md.append("|---" * (len(setups) + 1) + "|")

    def vals(setup, test, key):
        return [r.get(key) for r in rows if r["setup"] == setup and r["test"] == test
                and "error" not in r and r.get(key) is not None]

    for test, label in VM_TESTS:
        cells = [cell(vals(s, test, "mbps"), 0) if vals(s, test, "mbps") else "–"
                 for s, _ in setups]
        md.append("| %s | %s |" % (label, " | ".join(cells)))
    cells = [cell(vals(s, "udp", "loss_pct"), 1) for s, _ in setups]
    md.append("| UDP loss %%, client → server | %s |" % " | ".join(cells))
    cells = [cell(vals(s, "udpr", "loss_pct"), 1) for s, _ in setups]
    md.append("| UDP loss %%, server → client | %s |" % " | ".join(cells))
    for key, label in (("rtt_avg_ms", "ping RTT avg, ms"),
                       ("rtt_median_ms", "ping RTT median (each run's median of its pings), ms"),
                       ("rtt_p90_ms", "ping RTT 90th percentile (each run's), ms")):
        if any(vals(s, "ping", key) for s, _ in setups):
            cells = [cell(vals(s, "ping", key), 3) for s, _ in setups]
            md.append("| %s | %s |" % (label, " | ".join(cells)))
    md.append("")
    windows = []
    for s, n in setups:
        opened = vals(s, "busy_windows", "busy_windows")
        if opened:
            windows.append("%s: %s" % (n, ", ".join(str(v) for v in opened)))
    if windows:
        md.append("Busy windows the two devices opened over each whole run (their `busy_windows` "
                  "counter; `--busy-poll auto` opens one only for a wake-up that found 32 "
                  "frames): %s.\n" % "; ".join(windows))
    ping_rows = [("ping", "rtt_avg_ms", "ping RTT avg, ms (lower is better)"),
                 ("ping", "rtt_median_ms", "ping RTT median, ms (lower is better)")]
    tcp_rows = [(test, "mbps", label) for test, label in VM_TESTS[:4]]
    paired_table(md, rows, "cw-switch", "cw-persistent-on", "Switch vs link",
                 "`cw-switch` against `cw-persistent-on` (same gmem, offloads, guests and "
                 "tests; the two boot one after the other in every run): ratio of the "
                 "medians, and the range of the ratios within each run. The issue's target: "
                 "VM→VM TCP through the switch at least %d%% of the link's."
                 % (SWITCH_VM_TARGET * 100), ("switch", "link"), tcp_rows + ping_rows,
                 {"tcp1": (SWITCH_VM_TARGET, None), "tcp1r": (SWITCH_VM_TARGET, None)})
    paired_table(md, rows, "cw-persistent-on", "tap", "Causeway link vs QEMU tap",
                 "`cw-persistent-on` against `tap` (QEMU's best path here), paired by run as "
                 "above. The issue's targets: TCP at least %.1f× tap's, ping RTT no worse "
                 "(ratio at most 1)." % TAP_VM_TARGET, ("link", "tap"), tcp_rows + ping_rows,
                 dict([(t, (TAP_VM_TARGET, None)) for t, _, _ in tcp_rows] +
                      [("ping", (None, 1.0))]))
    md.append("### Host CPU seconds per GB received\n")
    md.append(
        "Measured per test window (from the client's `start`/`end` console markers), utime+"
        "stime from /proc/PID/stat (per thread for QEMU), divided by the bytes iperf3's "
        "receiver counted. QEMU runs with `-name guest=NAME,debug-threads=on`, so its vCPU "
        "threads are named `CPU n/TCG` and its time splits into **vCPUs** (the guests' own "
        "work, emulated) and **QEMU I/O** (everything else: the main loop and helper threads, "
        "i.e. QEMU's device model; for tap its virtio-net and tap path together with the "
        "host kernel's tap and bridge work done in its syscalls; for Causeway the handling "
        "of the device's call eventfds, which QEMU turns into interrupts itself under TCG "
        "where no KVM irqfd exists). **Network path** = what moving the bytes cost outside "
        "the guests: QEMU I/O, plus for Causeway the two `causeway device` processes (and "
        "the `causeway switch` in the switch setup). Host kernel work in softirq context "
        "charged to unrelated processes is not counted for either.\n")
    cpu_setups = [(s, n) for s, n in setups if s != "loopback"]
    md.append("Network path, s/GB, median (min–max), and its ratio to QEMU tap's (the issue's "
              "target: at most 1/3):\n")
    md.append("| test | " + " | ".join(n for _, n in cpu_setups) + " |")
    md.append("|---" * (len(cpu_setups) + 1) + "|")
    for test, label in VM_TESTS[:4]:
        tap = summary(vals("tap", test, "cpu_net_path_per_gb"))
        cells = []
        for s, _ in cpu_setups:
            v = vals(s, test, "cpu_net_path_per_gb")
            sm = summary(v)
            text = cell(v, 2) if v else "–"
            if s != "tap" and sm and tap:
                text += " (%.2f×)" % (sm[0] / tap[0])
            cells.append(text)
        md.append("| %s | %s |" % (label, " | ".join(cells)))
    md.append("")
    md.append("The parts (medians, s/GB): Causeway devices [+ switch] / QEMU I/O / QEMU vCPUs:\n")
    md.append("| test | " + " | ".join(n for _, n in cpu_setups) + " |")
    md.append("|---" * (len(cpu_setups) + 1) + "|")
    for test, label in VM_TESTS[:4]:
        cells = []
        for s, _ in cpu_setups:
            def med(key):
                sm = summary(vals(s, test, key))
                return "%.2f" % sm[0] if sm else "–"
            dv = med("cpu_devices_per_gb")
            if vals(s, test, "cpu_switch_per_gb"):
                dv += " + " + med("cpu_switch_per_gb")
            cells.append("%s / %s / %s" % (dv, med("cpu_qemu_io_per_gb"),
                                            med("cpu_qemu_vcpus_per_gb")))
        md.append("| %s | %s |" % (label, " | ".join(cells)))
    md.append("")
    errs = [r for r in rows if "error" in r]
    if errs:
        md.append("Failures, excluded from the figures above. (A test whose iperf3 fails at "
                  "once, typically iperf3's server resetting the control connection of a test "
                  "started right after the previous one, is retried up to twice first; a test "
                  "killed by its timeout stalled: no data for 15 s past its duration.)\n")
        for r in errs:
            md.append("- %s run %d, %s: %s" % (r["setup"], r["run"], r["test"], r["error"]))
        md.append("")
    plt = plt_module()
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4.5),
                                     gridspec_kw={"width_ratios": [3, 1, 2]})
    tests = [t for t, _ in VM_TESTS]
    v, e = [], []
    for s, _ in setups:
        vv, ee = [], []
        for t in tests:
            sm = summary(vals(s, t, "mbps"))
            vv.append(sm[0] if sm else None)
            ee.append((sm[1], sm[2]) if sm else (0, 0))
        v.append(vv)
        e.append(ee)
    bar_groups(a1, tests, [n for _, n in setups], v, e, "Mbit/s (receiver)")
    a1.set_title("iperf3 between two VMs")
    a1.legend(fontsize=7)
    ping_setups = [(s, n) for s, n in setups if s != "loopback"]
    for i, (s, n) in enumerate(ping_setups):
        sm = summary(vals(s, "ping", "rtt_median_ms") or vals(s, "ping", "rtt_avg_ms"))
        if sm:
            a2.bar(i, sm[0], yerr=[[sm[0] - sm[1]], [sm[2] - sm[0]]], capsize=2)
    a2.set_xticks(range(len(ping_setups)))
    a2.set_xticklabels([s for s, _ in ping_setups], rotation=45, ha="right", fontsize=7)
    a2.set_ylabel("ms")
    a2.set_title("ping RTT (median)")
    a2.grid(axis="y", alpha=0.3)
    cv, ce, labels, colors = [], [], [], []
    color = {"devices": "tab:orange", "switch": "tab:green", "QEMU I/O": "tab:blue"}
    for s, n in cpu_setups:
        for key, what in (("cpu_devices_per_gb", "devices"), ("cpu_switch_per_gb", "switch"),
                          ("cpu_qemu_io_per_gb", "QEMU I/O")):
            sm = summary(vals(s, "tcp1", key))
            if sm:
                labels.append("%s\n%s" % (s, what))
                colors.append(color[what])
                cv.append(sm[0])
                ce.append((sm[0] - sm[1], sm[2] - sm[0]))
    if cv:
        a3.bar(range(len(cv)), cv, yerr=list(zip(*ce)), capsize=2, color=colors)
        a3.set_xticks(range(len(cv)))
        a3.set_xticklabels(labels, rotation=60, ha="right", fontsize=6)
    a3.set_ylabel("host CPU s per GB (TCP, 1 stream)")
    a3.set_title("Network path CPU per GB (vCPUs excluded)")
    a3.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "vm.png"), dpi=110)
    plt.close(fig)
    md.append("![vm](vm.png)\n")


def load_machine(raw):
    return load(raw, "machine.json") or {}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--machine":
        os.makedirs(sys.argv[2], exist_ok=True)
        with open(os.path.join(sys.argv[2], "machine.json"), "w") as f:
            json.dump(machine(), f, indent=1)
        return 0
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    raw, out = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    m = load_machine(raw)
    md = ["# Causeway benchmark results\n"]
    md.append("Generated by `bench/run.sh%s`; raw data and logs in `bench/results/raw/` "
              "(not committed). Rerun with the same command: sizes, durations and run counts are "
              "fixed in the scripts, and no input is random (iperf3 and testpmd's flowgen send "
              "fixed patterns), so runs differ only by timing.\n" % (" --quick" if quick else ""))
    if quick:
        md.append("**This is a --quick smoke run: 1 run per cell, short windows. Do not quote "
                  "these figures.**\n")
    md.append("| | |")
    md.append("|---|---|")
    md.append("| date | %s |" % m.get("date", "?"))
    md.append("| commit | `%s` %s |" % (m.get("commit", "?"), m.get("commit_subject", "")))
    changed = sorted(set(m.get("uncommitted", []) + m.get("untracked_src", [])))
    if changed:
        dirs = sorted({"/".join(c.split("/")[:2]) for c in changed})
        md.append("| working tree | built with %d uncommitted files (other engineers' work in "
                  "progress) under: %s |" % (len(changed), ", ".join(dirs)))
    md.append("| CPU | %s, %s cores (%s guest) |" % (m.get("cpu", "?"), m.get("cores", "?"),
                                                    m.get("hypervisor") or "no hypervisor"))
    md.append("| RAM | %s GiB |" % m.get("mem_gib", "?"))
    md.append("| kernel | %s |" % m.get("kernel", "?"))
    md.append("| QEMU | %s (TCG: no usable KVM on this host) |" % m.get("qemu", "?"))
    md.append("| DPDK | %s (Debian dpdk-dev, dpdk-testpmd) |" % m.get("dpdk", "?"))
    md.append("| compiler | %s; build `build-bench`: buildtype=release, no sanitizers |"
              % m.get("gcc", "?"))
    loadtxt = load(raw, "load.txt")
    if loadtxt:
        md.append("| load average (1/5/15 min) before each section | %s |"
                  % "; ".join(l.strip() for l in loadtxt.splitlines() if l.strip()))
    if m.get("note"):
        # a section re-run on its own: which commit and time each part comes from
        md.append("| note | %s |" % m["note"])
    md.append("")
    md.append("**Machine load:** this is a 2-core machine shared with other engineers who were "
              "building and running tests (VMs included) during the run; the load averages "
              "above show how busy it was. Figures on a quiet machine would be higher and "
              "tighter; setups are interleaved run by run so that the load hits them alike, "
              "but single windows can still be hit unevenly (see the min–max ranges).\n")
    section_engine(raw, out, md)
    section_startup(raw, md)
    section_dpdk(raw, out, md)
    section_vm(raw, out, md)
    with open(os.path.join(out, "RESULTS.md"), "w") as f:
        f.write("\n".join(md).rstrip() + "\n")
    print("report: wrote %s" % os.path.join(out, "RESULTS.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
