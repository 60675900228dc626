#!/usr/bin/env python3
"""Scale: N VMs (default 8, 128 MiB each) on one switch, started from one
system file by `causeway run`, every VM pinging every other one.

Per run it reports
  - the time from starting `causeway run` to the last VM's PINGS-DONE line
    (each VM has then had one echo reply from each of the N-1 others), with
    the times to the launcher's control socket line and to every guest's
    script start along the way;
  - the host memory of the running system, read from /proc/PID/smaps of
    every process under the launcher once all pings are done:
      guest RAM      the memfd QEMU backs guest memory with (QEMU maps it,
                     and so does the VM's device process); "touched" is its
                     resident size in QEMU, which the guest wrote to
      ports          the causeway-port memfds (rings between each device and
                     the switch, mapped by both)
      other          everything else: heap, stacks, binaries and libraries
    and from those two sums (KiB):
      rss_formula    sum of Rss of the launcher, device and switch processes
                     without their guest-RAM mappings, plus each QEMU's Rss
                     minus its guest-RAM mapping. Shared pages (ports, the
                     QEMU binary, libc) count once per process that maps
                     them, so this overstates.
      pss_total      the same processes' Pss without guest-RAM mappings:
                     every shared page split among the processes mapping
                     it, so the sum counts each page once. This is the
                     host memory the system uses beyond guest RAM.
Then it stops the system with SIGTERM and times the shutdown.

Use a release build without sanitizers (ASan inflates memory several
times): meson setup build-rel --buildtype=release.

Usage: bench/scale.py [--build DIR] [--vms N] [--mem 128M] [--runs N] [--out FILE.json]
"""
import argparse
import base64
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import INITRD, KERNEL, ROOT, kill_group, summary, write_raw

CMDLINE = "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check"

# Reach each peer in turn: ping -W 1 gives up after a second while the peer
# is not up yet, so no extra sleep is needed. Then hold the system up.
SCRIPT = """for p in {peers}; do
  n=0; until ping -c 1 -W 1 $p >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 300 ] || exit 10; done
done
echo PINGS-DONE
sleep 900
"""


def ip(i):
    return "10.99.0.%d" % (i + 1)


def system_json(n, mem):
    vms = []
    for i in range(n):
        peers = " ".join(ip(k) for k in range(n) if k != i)
        z = base64.b64encode(gzip.compress(SCRIPT.format(peers=peers).encode(), mtime=0))
        cmdline = "%s cw.name=vm%d cw.ip=%s/24 cw.timeout=1000 cw.scriptz=%s" % (
            CMDLINE, i, ip(i), z.decode())
        vms.append({"name": "vm%d" % i, "kernel": KERNEL, "initrd": INITRD, "cmdline": cmdline,
                    "memory": mem, "vcpus": 1,
                    "nics": [{"switch": "sw0", "domain": "lab", "mac": "52:54:00:00:01:%02x" % i,
                              "ipv4": ip(i) + "/24"}]})
    return {"vms": vms, "switches": [{"name": "sw0"}]}


def descendants(root):
    """{pid: argv} of every process below root."""
    parent = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                parent[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                try:
                    with open("/proc/%d/cmdline" % c, "rb") as f:
                        out[c] = [a.decode(errors="replace") for a in f.read().split(b"\0")]
                except OSError:
                    continue
                todo.append(c)
    return out


def kind(argv):
    if argv and "qemu-system" in os.path.basename(argv[0]):
        return "qemu"
    if len(argv) > 1 and argv[1] in ("device", "switch"):
        return argv[1]
    return "other"


def smaps(pid):
    """{"guest"|"port"|"other": {"rss": KiB, "pss": KiB}} of one process, and
    "anon_max": the Rss of its largest anonymous mapping (in QEMU under TCG,
    the translated-code buffer)."""
    out = {k: {"rss": 0, "pss": 0} for k in ("guest", "port", "other")}
    out["anon_max"] = 0
    cls, anon = "other", False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
            if head:
                name = head.group(1)
                anon = name == ""
                cls = ("port" if "memfd:causeway-port" in name
                       else "guest" if "memfd:" in name else "other")
                continue
            m = re.match(r"^(Rss|Pss):\s+(\d+) kB", line)
            if m:
                out[cls][m.group(1).lower()] += int(m.group(2))
                if anon and m.group(1) == "Rss":
                    out["anon_max"] = max(out["anon_max"], int(m.group(2)))
    return out


def measure_memory(launcher_pid):
    procs = descendants(launcher_pid)
    rows = [("launcher", launcher_pid, smaps(launcher_pid))]
    for pid, argv in sorted(procs.items()):
        try:
            rows.append((kind(argv), pid, smaps(pid)))
        except OSError:
            pass
    by = {}
    for k, _, m in rows:
        b = by.setdefault(k, {"n": 0, "rss": 0, "pss_nonguest": 0, "guest_rss": 0,
                              "port_rss": 0, "other_rss": 0, "anon_max_rss": 0})
        b["n"] += 1
        b["rss"] += sum(m[c]["rss"] for c in ("guest", "port", "other"))
        b["anon_max_rss"] += m["anon_max"]
        b["pss_nonguest"] += m["port"]["pss"] + m["other"]["pss"]
        b["guest_rss"] += m["guest"]["rss"]
        b["port_rss"] += m["port"]["rss"]
        b["other_rss"] += m["other"]["rss"]
    rss_formula = sum(b["rss"] - b["guest_rss"] for b in by.values())
    pss_total = sum(b["pss_nonguest"] for b in by.values())
    return {"by_kind": by, "rss_formula_kib": rss_formula, "pss_total_kib": pss_total,
            "guest_touched_kib": by.get("qemu", {}).get("guest_rss", 0)}


def run_once(build, n, mem, workdir):
    path = os.path.join(workdir, "scale%d.json" % n)
    with open(path, "w") as f:
        json.dump(system_json(n, mem), f, indent=1)
    lines = []
    cond = threading.Condition()
    t0 = time.monotonic()
    proc = subprocess.Popen([os.path.join(build, "causeway"), "run", path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def reader():
        for raw in proc.stdout:
            with cond:
                lines.append((time.monotonic() - t0, raw.decode(errors="replace").rstrip()))
                cond.notify_all()
        with cond:
            cond.notify_all()

    threading.Thread(target=reader, daemon=True).start()
    names = ["vm%d" % i for i in range(n)]
    t_socket, t_start, t_done = None, {}, {}
    deadline = t0 + 600
    try:
        seen = 0
        with cond:
            while len(t_done) < n:
                while seen < len(lines):
                    t, text = lines[seen]
                    seen += 1
                    if t_socket is None and text.startswith("causeway: system control socket"):
                        t_socket = t
                    m = re.match(r"^(vm\d+)\| (CAUSEWAY-GUEST: script-start|PINGS-DONE|"
                                 r"CAUSEWAY-GUEST: exit=\d+)", text)
                    if m and m.group(2) == "PINGS-DONE":
                        t_done[m.group(1)] = t
                    elif m and "script-start" in m.group(2):
                        t_start.setdefault(m.group(1), t)
                    elif m:
                        raise RuntimeError("%s ended before its pings: %s" % (m.group(1), text))
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("causeway run %s before all pings were done (%d of %d)"
                                       % ("exited" if proc.poll() is not None else "timed out",
                                          len(t_done), n))
                cond.wait(0.5)
        time.sleep(2)  # let the last pings' processes exit
        mem_stats = measure_memory(proc.pid)
        t_stop = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(60)
        stop_s = time.monotonic() - t_stop
    finally:
        kill_group(proc, signal.SIGKILL)
    missing = [v for v in names if v not in t_start]
    if missing:
        raise RuntimeError("no script-start from %r" % missing)
    return {"vms": n, "mem": mem, "to_socket_s": t_socket,
            "boot_s": summary(list(t_start.values())), "all_pings_done_s": max(t_done.values()),
            "first_pings_done_s": min(t_done.values()), "stop_s": stop_s, "exit": rc,
            "memory": mem_stats}


def mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


def report(r):
    print("%d VMs x %s: control socket after %.2f s; guests' script start %.2f..%.2f s "
          "(median %.2f); all %d x %d pings done after %.2f s (first VM done %.2f s); "
          "SIGTERM to exit %.2f s (status %d)"
          % (r["vms"], r["mem"], r["to_socket_s"], r["boot_s"][1], r["boot_s"][2], r["boot_s"][0],
             r["vms"], r["vms"] - 1, r["all_pings_done_s"], r["first_pings_done_s"], r["stop_s"],
             r["exit"]))
    m = r["memory"]
    print("  %-9s %3s %12s %14s %12s %12s %14s" % ("process", "n", "Rss", "guest RAM Rss",
                                                    "ports Rss", "other Rss", "Pss w/o guest"))
    for k, b in sorted(m["by_kind"].items()):
        print("  %-9s %3d %12s %14s %12s %12s %14s" % (k, b["n"], mib(b["rss"]), mib(b["guest_rss"]),
                                                     mib(b["port_rss"]), mib(b["other_rss"]),
                                                     mib(b["pss_nonguest"])))
    q = m["by_kind"].get("qemu")
    if q:
        print("  QEMU: largest anonymous mapping (TCG code buffer) %s of its %s other Rss"
              % (mib(q["anon_max_rss"]), mib(q["other_rss"])))
    print("  guest RAM touched (QEMU Rss of the guest memfd): %s of %d x %s"
          % (mib(m["guest_touched_kib"]), r["vms"], r["mem"]))
    print("  beyond guest RAM: Rss formula %s; Pss (each page once) %s"
          % (mib(m["rss_formula_kib"]), mib(m["pss_total_kib"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--vms", type=int, default=8)
    ap.add_argument("--mem", default="128M")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_args()
    if not 2 <= args.vms <= 64:
        ap.error("--vms: 2 to 64")
    rows = []
    with open("/proc/loadavg") as f:
        print("load average before: %s" % " ".join(f.read().split()[:3]))
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="cw-scale-") as d:
            r = run_once(args.build, args.vms, args.mem, d)
        report(r)
        rows.append(r)
    if args.out:
        write_raw(args.out, "scale", vars(args), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
