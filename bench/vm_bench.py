#!/usr/bin/env python3
"""VM to VM with real guests: Causeway links against QEMU's own best path
here, and the guest-bound ceiling (loopback inside one guest).

Setups (each run boots a fresh pair; runs are interleaved across setups):
  cw-persistent-on   two `causeway vm`, one link, gmem persistent, offloads on
  cw-persistent-off  the same, offloads off
  cw-map-on          gmem map-per-access, offloads on
  cw-map-off         gmem map-per-access, offloads off
  cw-switch          `causeway run` of a system file: the same two VMs on one
                     switch (a `causeway switch` process between the two
                     devices), gmem persistent, offloads on: against
                     cw-persistent-on, the switch's cost
  tap                two plain QEMUs, `-netdev tap,vhost=off,vnet_hdr=on`, both
                     taps in a Linux bridge, all inside a network namespace
                     made for the run (no /dev/vhost-net on this host)
  tap-intx           the same with the NICs on legacy INTx (vectors=0), the
                     interrupt mode Causeway's NIC must use under TCG (QEMU
                     7.2 crashes with vhost-user and MSI-X there): against
                     tap, what the interrupt mode alone costs
  cw-busy-poll       cw-persistent-on with --net busy-poll=1000 (not run by
                     default)
  loopback           one plain QEMU without a NIC, iperf3 to 127.0.0.1

Same kernel, initrd, memory, vCPUs, TCG flags, firmware and guest command
line everywhere. The
client guest runs the tests one after the other and prints `CWB start NAME`
and `CWB end STATUS` around each; when the host sees a marker on the console
it samples the utime+stime of the setup's processes, so each test gets the
host CPU its window used.

Usage: bench/vm_bench.py --build DIR --out FILE [--runs N] [--seconds S]
                         [--udp-rate R] [--setups a,b,...]
"""
import argparse
import base64
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (INITRD, KERNEL, children, cpu_total, vcpu_cpu_total, kill_group, proc_cmdline,
                      write_raw)

QBOOT = "/usr/share/qemu/qboot.rom"
# no_timer_check: as Causeway's default command line (src/system/qemu.h), a
# loaded TCG host can otherwise fail the guest's IO-APIC timer probe (panic).
BASE_CMDLINE = "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check"
MEM, CPUS = "256M", 1
SERVER_IP, CLIENT_IP, PREFIX = "10.99.0.1", "10.99.0.2", 16
MAC_S, MAC_C = "52:54:00:99:00:01", "52:54:00:99:00:02"

SETUPS = {
    "cw-persistent-on": ("causeway", "persistent", "on"),
    "cw-switch": ("switch", "persistent", "on"),
    "cw-persistent-off": ("causeway", "persistent", "off"),
    "cw-map-on": ("causeway", "map-per-access", "on"),
    "cw-map-off": ("causeway", "map-per-access", "off"),
    "tap": ("tap", None, "on"),
    "tap-intx": ("tap", None, "on"),
    "cw-busy-poll": ("causeway", "persistent", "on"),
}
# Setups whose devices keep a busy window after traffic (--net busy-poll=USEC).
BUSY_POLL_US = {"cw-busy-poll": 1000}
# Run unless --setups says otherwise. cw-busy-poll is left out: on a host
# where two TCG vCPUs already want both cores, devices that poll take CPU from
# the guests (docs/PERFORMANCE.md has its figures).
DEFAULT_SETUPS = [s for s in SETUPS if s != "cw-busy-poll"] + ["loopback"]

SERVER_SCRIPT = """iperf3 -s -D
nc -l -p 9000 >/dev/null
"""

# t NAME CMD...: one test between markers. iperf3's server sometimes resets
# the control connection of a test that starts right after the previous one
# ("unable to receive control message"); such a quick failure is retried (at
# most twice) with a fresh start marker, so the CPU window is the last try's.
# A test killed by its timeout (143) is not retried.
#
# Warm-up: ping until the path answers, then a 1 s iperf3 (retried while the
# server daemon starts) whose figures are not used.
CLIENT_SCRIPT = """S={srv}
n=0; until ping -c 1 -W 1 $S >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 60 ] || exit 10; done
n=0; until iperf3 -c $S -t 1 >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 10 ] || exit 11; sleep 1; done
t() {{ n=0; name=$1; shift; while :; do echo "CWB start $name"; timeout {limit} "$@"; s=$?
[ $s -eq 0 ] || [ $s -eq 143 ] || [ $n -ge 2 ] && break; n=$((n+1)); sleep 1; done; echo "CWB end $s"; }}
t ping ping -c {pings} -i 0.2 $S
t tcp1 iperf3 -c $S -t {t} -f m
t tcp1r iperf3 -c $S -t {t} -f m -R
t tcp2 iperf3 -c $S -t {t} -f m -P 2
t tcp2r iperf3 -c $S -t {t} -f m -P 2 -R
t udp iperf3 -c $S -t {t} -f m -u -b {udp}
t udpr iperf3 -c $S -t {t} -f m -u -b {udp} -R
echo done | nc $S 9000
"""

LOOPBACK_SCRIPT = """ip link set lo up
iperf3 -s -D
n=0; until iperf3 -c 127.0.0.1 -t 1 >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 10 ] || exit 11; sleep 1; done
t() {{ n=0; name=$1; shift; while :; do echo "CWB start $name"; timeout {limit} "$@"; s=$?
[ $s -eq 0 ] || [ $s -eq 143 ] || [ $n -ge 2 ] && break; n=$((n+1)); sleep 1; done; echo "CWB end $s"; }}
t tcp1 iperf3 -c 127.0.0.1 -t {t} -f m
t tcp2 iperf3 -c 127.0.0.1 -t {t} -f m -P 2
"""


def guest_cmdline(name, script, ip=None):
    parts = [BASE_CMDLINE, "cw.name=" + name]
    if ip:
        parts.append("cw.ip=%s/%d" % (ip, PREFIX))
    z = gzip.compress(script.encode(), mtime=0)
    parts.append("cw.scriptz=" + base64.b64encode(z).decode())
    line = " ".join(parts)
    if len(line) > 2000:
        raise ValueError("guest command line too long (%d bytes)" % len(line))
    return line


def qemu_args(name, cmdline, netdev=None, mac=None, intx=False):
    """Plain QEMU with exactly the flags `causeway vm` uses under TCG.
    intx: the NIC without MSI-X vectors (legacy INTx), as Causeway's NIC must
    run under TCG; tap-intx against tap prices that interrupt mode alone."""
    a = ["qemu-system-x86_64", "-name", "guest=%s,debug-threads=on" % name, "-machine", "pc,memory-backend=mem0",
         "-accel", "tcg,thread=multi", "-cpu", "max", "-m", MEM, "-smp", str(CPUS),
         "-object", "memory-backend-memfd,id=mem0,size=%s,share=on" % MEM,
         "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]
    if os.path.exists(QBOOT):
        a += ["-bios", QBOOT]
    a += ["-chardev", "stdio,id=con0,signal=off", "-serial", "chardev:con0",
          "-kernel", KERNEL, "-initrd", INITRD, "-append", cmdline]
    if netdev:
        # QEMU's default for virtio-net-pci (MSI-X vectors): its best path.
        # QEMU caps the TX queue at 256 for backends other than vhost-user.
        a += ["-netdev", netdev, "-device",
              "virtio-net-pci,netdev=n0,mac=%s,rx_queue_size=1024,tx_queue_size=256,romfile=%s"
              % (mac, ",vectors=0" if intx else "")]
    return a


class Console:
    """A VM process with its console captured; CPU samples taken at markers.
    For `causeway run`, whose stdout carries every VM's console as `VM| line`,
    marker_prefix ("cli| ") says whose lines hold the markers."""

    def __init__(self, args, log_path, on_marker=None, marker_prefix=""):
        self.lines = []
        self.cond = threading.Condition()
        self.on_marker = on_marker
        self.marker_prefix = marker_prefix
        self.log = open(log_path, "w")
        self.log.write("$ " + " ".join(args) + "\n")
        self.log.flush()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            text = raw.decode(errors="replace").rstrip("\r\n")
            now = time.monotonic()
            if self.on_marker and text.startswith(self.marker_prefix + "CWB "):
                self.on_marker(text[len(self.marker_prefix):], now)
            with self.cond:
                self.lines.append(text)
                self.cond.notify_all()
            self.log.write("%8.3f %s\n" % (now - self.t0, text))
            self.log.flush()
        with self.cond:
            self.cond.notify_all()

    def text(self, prefix=""):
        """The lines that start with prefix, without it."""
        with self.cond:
            return "\n".join(ln[len(prefix):] for ln in self.lines if ln.startswith(prefix))

    def wait_for(self, needle, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(needle in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    return False
                self.cond.wait(min(left, 0.5))
        return True

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            return False
        self.reader.join(5)
        return True

    def guest_status(self, prefix=""):
        m = re.search(r"CAUSEWAY-GUEST: exit=(\d+)", self.text(prefix))
        return int(m.group(1)) if m else None

    def close(self):
        kill_group(self.proc)
        self.log.close()


class VmView:
    """One VM of a `causeway run` (its `NAME| ` lines), shaped like a Console
    for finish_pair: waiting for it waits for the launcher, which ends when
    every VM has."""

    def __init__(self, console, name):
        self.console, self.prefix = console, name + "| "
        self.log = console.log

    def text(self):
        return self.console.text(self.prefix)

    def guest_status(self):
        return self.console.guest_status(self.prefix)

    def wait_exit(self, timeout):
        return self.console.wait_exit(timeout)


class Sampler:
    """CPU seconds of named process groups, sampled at each console marker."""

    def __init__(self):
        self.groups = {}  # name -> [pid]
        self.marks = []   # (marker text, time, {group: cpu seconds})

    def sample(self, text, now):
        cpu = {g: cpu_total(p) for g, p in self.groups.items()}
        if "qemu" in self.groups:
            cpu["qemu_vcpus"] = vcpu_cpu_total(self.groups["qemu"])
        self.marks.append((text, now, cpu))

    def windows(self):
        """{test: (seconds, {group: cpu seconds})} from start/end marker pairs."""
        out = {}
        for (a, ta, ca), (b, tb, cb) in zip(self.marks, self.marks[1:]):
            ma = re.match(r"CWB start (\S+)", a)
            if ma and b.startswith("CWB end"):
                out[ma.group(1)] = (tb - ta, {g: cb[g] - ca[g] for g in ca if g in cb})
        return out


UNITS = {"K": 1e3, "M": 1e6, "G": 1e9, "": 1}
BINARY = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "": 1}


def test_blocks(text):
    """{test: console text between its start and end markers}."""
    out = {}
    for m in re.finditer(r"CWB start (\S+)\n(.*?)\nCWB end (\d+)", text, re.S):
        out[m.group(1)] = (m.group(2), int(m.group(3)))
    return out


def parse_iperf(block):
    """(Mbit/s, bytes, loss %) from the receiver summary (the SUM line with -P)."""
    lines = [ln for ln in block.splitlines() if "receiver" in ln]
    if not lines:
        return None
    summ = [ln for ln in lines if "[SUM]" in ln]
    line = (summ or lines)[-1]
    m = re.search(r"sec\s+([\d.]+)\s+([KMG]?)Bytes\s+([\d.]+)\s+([KMG]?)bits/sec", line)
    if not m:
        return None
    nbytes = float(m.group(1)) * BINARY[m.group(2)]  # iperf3 counts bytes in 1024s
    mbps = float(m.group(3)) * UNITS[m.group(4)] / 1e6
    loss = re.search(r"\(([\d.e+-]+)%\)", line)
    return mbps, nbytes, float(loss.group(1)) if loss else None


def parse_ping(block):
    """(avg, min, max, loss %, median, 90th percentile) of one ping test.
    The median and p90 come from the per-reply times: on this host a few
    replies in twenty can wait milliseconds for a halted CPU to be woken,
    and the average follows those few."""
    m = re.search(r"min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+)", block)
    lost = re.search(r"(\d+)% packet loss", block)
    if not m:
        return None
    times = sorted(float(t) for t in re.findall(r"seq=\d+ ttl=\d+ time=([\d.]+) ms", block))
    median = statistics.median(times) if times else None
    p90 = times[min(len(times) - 1, (9 * len(times)) // 10)] if times else None
    return float(m.group(2)), float(m.group(1)), float(m.group(3)), \
        int(lost.group(1)) if lost else None, median, p90


def results_from(text, sampler, setup, run):
    rows = []
    wins = sampler.windows()
    for test, (block, status) in test_blocks(text).items():
        row = {"setup": setup, "run": run, "test": test, "status": status}
        if test in wins:
            secs, cpu = wins[test]
            row["seconds"] = secs
            for g, c in cpu.items():
                row["cpu_" + g] = c
        if test == "ping":
            p = parse_ping(block)
            if p:
                (row["rtt_avg_ms"], row["rtt_min_ms"], row["rtt_max_ms"], row["ping_loss"],
                 row["rtt_median_ms"], row["rtt_p90_ms"]) = p
        else:
            r = parse_iperf(block)
            if r:
                row["mbps"], row["bytes"], row["loss_pct"] = r
                gb = r[1] / 1e9
                for g in list(cpu if test in wins else []):
                    row["cpu_%s_per_gb" % g] = row["cpu_" + g] / gb if gb else None
                if test in wins and "qemu_vcpus" in cpu:
                    # QEMU's I/O side: everything but the vCPU threads
                    io = cpu["qemu"] - cpu["qemu_vcpus"]
                    row["cpu_qemu_io_per_gb"] = io / gb if gb else None
                    row["cpu_net_path_per_gb"] = (
                        (io + cpu.get("devices", 0.0) + cpu.get("switch", 0.0)) / gb
                        if gb else None)
        rows.append(row)
    return rows


def finish_pair(vms, sampler, setup, run, seconds, pings):
    """Rows of every test the client completed, plus an error row if the
    client did not end cleanly (a stalled test ends at its `timeout`)."""
    srv, cli = vms
    done = cli.wait_exit(90 + 7 * (seconds + 15) + pings)
    srv.wait_exit(30)
    rows = results_from(cli.text(), sampler, setup, run)
    status = cli.guest_status()
    if not done or status != 0:
        rows.append({"setup": setup, "run": run, "test": "*",
                     "error": "client %s (guest status %r, log %s)"
                     % ("ended" if done else "timed out", status, cli.log.name)})
    for r in rows:
        if r.get("status") not in (None, 0):
            r["error"] = ("killed by its timeout (a stalled test)" if r["status"] == 143
                          else "iperf3/ping exited %d after its retries (see log %s)"
                          % (r["status"], cli.log.name))
    # Busy windows the two devices opened over the whole run (their exit
    # stats lines): how much polling --busy-poll auto did for these guests.
    windows = [int(m) for v in vms for m in re.findall(r" stats link=.* busy_windows=(\d+)",
                                                      v.text())]
    if len(windows) == 2:
        rows.append({"setup": setup, "run": run, "test": "busy_windows",
                     "busy_windows": sum(windows)})
    return rows


def causeway_pair(build, setup, run, logs, seconds, udp, pings):
    _, gmem, offloads = SETUPS[setup]
    tmp = tempfile.mkdtemp(prefix="cwb-vm-")
    link = os.path.join(tmp, "link.sock")
    sampler = Sampler()
    vms = []
    try:
        for name, ip, mac, script in (
                ("srv", SERVER_IP, MAC_S, SERVER_SCRIPT),
                ("cli", CLIENT_IP, MAC_C, CLIENT_SCRIPT.format(
                    srv=SERVER_IP, t=seconds, udp=udp, pings=pings, limit=seconds + 15))):
            args = [os.path.join(build, "causeway"), "vm", "--name", name, "--kernel", KERNEL,
                    "--initrd", INITRD, "--mem", MEM, "--cpus", str(CPUS), "--gmem", gmem,
                    "--cmdline", guest_cmdline(name, script, ip),
                    "--net", "link=%s,mac=%s,offloads=%s%s" % (
                        link, mac, offloads,
                        # the others keep the device's default (auto)
                        ",busy-poll=%d" % BUSY_POLL_US[setup] if setup in BUSY_POLL_US
                        else "")]
            vms.append(Console(args, os.path.join(logs, "%s-run%d-%s.log" % (setup, run, name)),
                               sampler.sample if name == "cli" else None))
        for v in vms:
            if not v.wait_for("CAUSEWAY-GUEST: script-start", 120):
                raise RuntimeError("%s: a guest did not start (logs in %s)" % (setup, logs))
        devices, qemus = [], []
        for v in vms:
            for pid in children(v.proc.pid):
                argv = proc_cmdline(pid)
                (devices if len(argv) > 1 and argv[1] == b"device" else qemus).append(pid)
        if len(devices) != 2 or len(qemus) != 2:
            raise RuntimeError("%s: expected 2 devices and 2 QEMUs, found %r %r"
                               % (setup, devices, qemus))
        sampler.groups = {"devices": devices, "qemu": qemus}
        return finish_pair(vms, sampler, setup, run, seconds, pings)
    finally:
        for v in vms:
            v.close()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


def switch_pair(build, setup, run, logs, seconds, udp, pings):
    """The same two VMs from one system file through `causeway run`: one
    switch, one NIC each (the addresses given, so the switch checks sources
    as in any real system), same domain (no policy rule in the path)."""
    _, gmem, offloads = SETUPS[setup]
    tmp = tempfile.mkdtemp(prefix="cwb-vm-")
    vms = []
    for name, ip, mac, script in (
            ("srv", SERVER_IP, MAC_S, SERVER_SCRIPT),
            ("cli", CLIENT_IP, MAC_C, CLIENT_SCRIPT.format(
                srv=SERVER_IP, t=seconds, udp=udp, pings=pings, limit=seconds + 15))):
        vms.append({"name": name, "kernel": KERNEL, "initrd": INITRD,
                    "cmdline": guest_cmdline(name, script, ip), "memory": MEM, "vcpus": CPUS,
                    "gmem": gmem,
                    "nics": [{"switch": "sw0", "mac": mac, "domain": "bench",
                              "ipv4": "%s/%d" % (ip, PREFIX), "offloads": offloads == "on"}]})
    path = os.path.join(tmp, "system.json")
    with open(path, "w") as f:
        json.dump({"vms": vms, "switches": [{"name": "sw0"}]}, f, indent=1)
    sampler = Sampler()
    run_ = None
    try:
        run_ = Console([os.path.join(build, "causeway"), "run", path],
                       os.path.join(logs, "%s-run%d.log" % (setup, run)), sampler.sample,
                       marker_prefix="cli| ")
        for name in ("srv", "cli"):
            if not run_.wait_for("%s| CAUSEWAY-GUEST: script-start" % name, 120):
                raise RuntimeError("%s: guest %s did not start (log %s)"
                                   % (setup, name, run_.log.name))
        groups = {"devices": [], "switch": [], "qemu": []}
        for pid in children(run_.proc.pid):
            argv = proc_cmdline(pid)
            kind = argv[1] if len(argv) > 1 else b""
            groups["devices" if kind == b"device" else "switch" if kind == b"switch"
                   else "qemu"].append(pid)
        if [len(groups[g]) for g in ("devices", "switch", "qemu")] != [2, 1, 2]:
            raise RuntimeError("%s: expected 2 devices, 1 switch and 2 QEMUs, found %r"
                               % (setup, groups))
        sampler.groups = groups
        return finish_pair((VmView(run_, "srv"), VmView(run_, "cli")), sampler, setup, run,
                           seconds, pings)
    finally:
        if run_:
            run_.close()  # SIGTERM: the launcher stops everything it started
        os.unlink(path)
        os.rmdir(tmp)


def remove_stale_namespaces():
    """Delete cwbench-PID-RUN namespaces left by a benchmark that was killed
    (its finally clause never ran): only this prefix, only for dead PIDs."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(r"(cwbench-(\d+)-\d+)\b", line)
        if m and not os.path.exists("/proc/" + m.group(2)):
            print("vm: removing stale namespace %s" % m.group(1), flush=True)
            subprocess.run(["ip", "netns", "delete", m.group(1)], check=False)


def netns(cmd, ns, check=True):
    return subprocess.run(["ip", "netns", "exec", ns] + cmd, check=check,
                          capture_output=True, text=True)


def tap_pair(build, setup, run, logs, seconds, udp, pings):
    """Two QEMUs on taps in a bridge, inside a namespace that lives for this run.
    Nothing in the root namespace is created or changed."""
    ns = "cwbench-%d-%d" % (os.getpid(), run)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    sampler = Sampler()
    vms = []
    try:
        netns(["ip", "link", "set", "lo", "up"], ns)
        netns(["ip", "link", "add", "br0", "type", "bridge", "stp_state", "0",
               "forward_delay", "0"], ns)
        netns(["ip", "link", "set", "br0", "up"], ns)
        for tap in ("tap0", "tap1"):
            netns(["ip", "tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr"], ns)
            netns(["ip", "link", "set", tap, "master", "br0", "up"], ns)
        for name, ip, mac, tap, script in (
                ("srv", SERVER_IP, MAC_S, "tap0", SERVER_SCRIPT),
                ("cli", CLIENT_IP, MAC_C, "tap1", CLIENT_SCRIPT.format(
                    srv=SERVER_IP, t=seconds, udp=udp, pings=pings, limit=seconds + 15))):
            netdev = "tap,id=n0,ifname=%s,script=no,downscript=no,vhost=off,vnet_hdr=on" % tap
            # `ip netns exec` enters the namespace and execs QEMU: same pid.
            args = ["ip", "netns", "exec", ns] + qemu_args(
                name, guest_cmdline(name, script, ip), netdev, mac, intx=setup == "tap-intx")
            vms.append(Console(args, os.path.join(logs, "%s-run%d-%s.log" % (setup, run, name)),
                               sampler.sample if name == "cli" else None))
        for v in vms:
            if not v.wait_for("CAUSEWAY-GUEST: script-start", 120):
                raise RuntimeError("%s: a guest did not start (logs in %s)" % (setup, logs))
        qemus = [v.proc.pid for v in vms]
        for pid in qemus:
            argv = proc_cmdline(pid)
            if not argv or not argv[0].endswith(b"qemu-system-x86_64"):
                raise RuntimeError("%s: pid %d is not QEMU: %r" % (setup, pid, argv[:1]))
        sampler.groups = {"qemu": qemus}
        return finish_pair(vms, sampler, setup, run, seconds, pings)
    finally:
        for v in vms:
            v.close()
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def loopback(build, run, logs, seconds):
    sampler = Sampler()
    script = LOOPBACK_SCRIPT.format(t=seconds, limit=seconds + 15)
    v = Console(qemu_args("lo", guest_cmdline("lo", script)),
                os.path.join(logs, "loopback-run%d.log" % run), sampler.sample)
    try:
        if not v.wait_for("CAUSEWAY-GUEST: script-start", 120):
            raise RuntimeError("loopback: guest did not start")
        sampler.groups = {"qemu": [v.proc.pid]}
        if not v.wait_exit(60 + seconds * 4):
            raise RuntimeError("loopback: guest did not finish")
        if v.guest_status() != 0:
            raise RuntimeError("loopback: script exited %r" % v.guest_status())
        return results_from(v.text(), sampler, "loopback", run)
    finally:
        v.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--logs", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--pings", type=int, default=20)
    ap.add_argument("--udp-rate", default="200M")
    ap.add_argument("--setups", default=",".join(DEFAULT_SETUPS))
    args = ap.parse_args()
    for f in (KERNEL, INITRD):
        if not os.path.exists(f):
            print("vm: guest image missing: %s (run guest/build.sh)" % f)
            return 1
    logs = args.logs or os.path.join(os.path.dirname(args.out), "logs-vm")
    os.makedirs(logs, exist_ok=True)
    setups = args.setups.split(",")
    remove_stale_namespaces()
    rows = []
    for run in range(args.runs):
        for setup in setups:
            t0 = time.monotonic()
            try:
                if setup == "loopback":
                    got = loopback(args.build, run, logs, args.seconds)
                elif SETUPS[setup][0] == "tap":
                    got = tap_pair(args.build, setup, run, logs, args.seconds, args.udp_rate,
                                   args.pings)
                elif SETUPS[setup][0] == "switch":
                    got = switch_pair(args.build, setup, run, logs, args.seconds,
                                      args.udp_rate, args.pings)
                else:
                    got = causeway_pair(args.build, setup, run, logs, args.seconds,
                                        args.udp_rate, args.pings)
            except (RuntimeError, OSError, subprocess.CalledProcessError, KeyError) as e:
                print("vm: %s run %d failed: %s" % (setup, run, e), flush=True)
                rows.append({"setup": setup, "run": run, "test": "*", "error": str(e)})
                continue
            rows += got
            brief = ", ".join("%s %.0f Mbit/s" % (r["test"], r["mbps"]) for r in got
                              if "mbps" in r and "error" not in r)
            brief += "".join("; FAILED %s: %s" % (r["test"], r["error"]) for r in got
                             if "error" in r)
            ping = [r for r in got if r["test"] == "ping" and "rtt_avg_ms" in r]
            if ping:
                brief += ", ping %.3f ms" % ping[0]["rtt_avg_ms"]
            print("vm: %s run %d (%.0f s): %s" % (setup, run, time.monotonic() - t0, brief),
                  flush=True)
    params = {"runs": args.runs, "seconds": args.seconds, "pings": args.pings,
              "ping_interval_s": 0.2, "udp_rate": args.udp_rate, "mem": MEM, "cpus": CPUS,
              "setups": setups}
    write_raw(args.out, "vm", params, rows)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
