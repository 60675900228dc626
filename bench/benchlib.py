"""Helpers shared by the benchmark scripts: CPU accounting from /proc,
process start/stop, raw result files, and the summary statistics the report
uses. Nothing here measures anything by itself."""
import json
import os
import re
import signal
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.path.join(ROOT, "build", "guest")
KERNEL = os.path.join(GUEST, "bzImage")
INITRD = os.path.join(GUEST, "initramfs.cpio.gz")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def stat_cpu_seconds(path):
    """utime+stime from a /proc stat file (a process's or one thread's), in
    seconds; None once it is gone.

    Fields 14 and 15 count clock ticks; the command name (field 2) may hold
    spaces, so the fields are counted after its closing parenthesis."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds(pid):
    """utime+stime of one process (all its threads), in seconds; None once it is gone."""
    return stat_cpu_seconds("/proc/%d/stat" % pid)


VCPU_THREAD = re.compile(r"CPU \d+/(TCG|KVM)$")


def vcpu_cpu_total(pids):
    """CPU seconds of the vCPU threads ("CPU n/TCG", "CPU n/KVM") of QEMU
    processes. The rest of a QEMU's CPU is its I/O side: the main loop that
    runs virtio-net and tap (or, with vhost-user, turns the device's call
    eventfd into an interrupt) and its helper threads; taken as the process
    total minus this, because helper threads come and go and take their
    counts with them."""
    total = 0.0
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                    if not VCPU_THREAD.match(f.read().strip()):
                        continue
            except OSError:
                continue
            total += stat_cpu_seconds("/proc/%d/task/%s/stat" % (pid, tid)) or 0.0
    return total


def cpu_total(pids):
    """Summed CPU seconds of several processes (a vanished one counts 0)."""
    return sum(cpu_seconds(p) or 0.0 for p in pids)


def ctx_switches(pids):
    """Summed context switches (voluntary: the process slept; involuntary: it
    was preempted) of several processes, from /proc/PID/status."""
    vol = invol = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
        except OSError:
            pass
    return vol, invol


def cpu_busy(cpu):
    """Seconds host CPU number `cpu` has spent not idle (all processes and the
    kernel), from /proc/stat; with cpu_total of our own processes it tells how
    much of a core others took during a window."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%d " % cpu):
                v = [int(x) for x in line.split()[1:]]
                # user nice system idle iowait irq softirq steal (guest is in user)
                return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK
    return None


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in out.split()]


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def kill_group(proc, sig=signal.SIGTERM, wait=10):
    """Signal a process started with start_new_session=True and its group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def wait_for_path(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def summary(values):
    """(median, min, max, n) of the values that are not None."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals), len(vals)


def write_raw(path, section, params, rows):
    """One JSON file per section: the parameters and one row per run."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"section": section, "params": params, "rows": rows}, f, indent=1)
