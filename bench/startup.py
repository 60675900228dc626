#!/usr/bin/env python3
"""Start-up time and device-process memory, side by side with plain QEMU.

For each of N runs (default 3) it measures the time from launch to the
guest's `CAUSEWAY-GUEST: script-start` line:
  - causeway: `causeway vm` with one NIC (device process + QEMU + vhost-user);
  - qemu:     plain QEMU, same kernel, initrd, command line, memory and
              firmware, with its own virtio-net-pci on an isolated user netdev.
Then, with a Causeway VM idle, it reads the device process's /proc/PID/smaps
and reports its resident memory outside the guest's RAM (the guest regions
are the memfd mappings QEMU handed over; the port memfd is shared with the
peer and shown separately).

Usage: bench/startup.py [--runs N] [--build DIR]
"""
import argparse
import base64
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST = os.path.join(ROOT, "build", "guest")
KERNEL = os.path.join(GUEST, "bzImage")
INITRD = os.path.join(GUEST, "initramfs.cpio.gz")
CMDLINE = "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check cw.ip=10.99.0.1/24"
QBOOT = "/usr/share/qemu/qboot.rom"


def script_arg(script):
    return "cw.script=" + base64.b64encode(script.encode()).decode()


def time_to_marker(args, marker="CAUSEWAY-GUEST: script-start", timeout=120):
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    took = None
    for raw in p.stdout:
        if marker in raw.decode(errors="replace"):
            took = time.monotonic() - t0
            break
        if time.monotonic() - t0 > timeout:
            break
    p.kill()
    p.wait()
    return took


def causeway_args(build, link, script="true"):
    return [os.path.join(build, "causeway"), "vm", "--name", "bench", "--kernel", KERNEL,
            "--initrd", INITRD, "--cmdline", CMDLINE + " " + script_arg(script),
            "--net", "link=%s,mac=52:54:00:00:00:01" % link]


def qemu_args(script="true"):
    a = ["qemu-system-x86_64", "-machine", "pc,memory-backend=mem0", "-accel", "tcg,thread=multi",
         "-cpu", "max", "-m", "256M", "-object",
         "memory-backend-memfd,id=mem0,size=256M,share=on", "-nodefaults", "-no-user-config",
         "-display", "none", "-no-reboot", "-serial", "stdio", "-kernel", KERNEL, "-initrd",
         INITRD, "-append", CMDLINE + " " + script_arg(script),
         "-netdev", "user,id=n0,restrict=on", "-device",
         "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01,romfile="]
    if os.path.exists(QBOOT):
        a[1:1] = ["-bios", QBOOT]
    return a


def device_memory(build):
    """(private KiB, guest-region KiB, port KiB, total Rss KiB) of an idle device."""
    link = tempfile.mktemp(prefix="cw-bench-", suffix=".sock")
    p = subprocess.Popen(causeway_args(build, link, "sleep 30"), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        for raw in p.stdout:
            if b"script-start" in raw:
                break
        time.sleep(2)
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                              text=True).stdout.split()
        dev = [k for k in kids if b"device" in open("/proc/%s/cmdline" % k, "rb").read()]
        smaps = open("/proc/%s/smaps" % dev[0]).read()
    finally:
        p.kill()
        p.wait()
    guest = port = other = 0
    name = ""
    for line in smaps.splitlines():
        head = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
        if head:
            name = head.group(1)
            continue
        m = re.match(r"^Rss:\s+(\d+) kB", line)
        if m:
            kb = int(m.group(1))
            if "memfd:causeway-port" in name:
                port += kb
            elif "memfd:" in name:
                guest += kb
            else:
                other += kb
    return other, guest, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    cw, qe = [], []
    for i in range(args.runs):
        link = tempfile.mktemp(prefix="cw-bench-", suffix=".sock")
        cw.append(time_to_marker(causeway_args(args.build, link)))
        qe.append(time_to_marker(qemu_args()))
    if None in cw or None in qe:
        print("a run did not reach the guest script: causeway %r qemu %r" % (cw, qe))
        return 1
    print("time to guest script start, %d runs (s): causeway vm median %.2f (min %.2f max %.2f);"
          " plain QEMU median %.2f (min %.2f max %.2f)"
          % (args.runs, statistics.median(cw), min(cw), max(cw), statistics.median(qe), min(qe),
             max(qe)))
    other, guest, port = device_memory(args.build)
    print("device process resident memory: %d KiB outside guest RAM and port "
          "(guest regions touched %d KiB, port %d KiB shared with the peer)" % (other, guest, port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
