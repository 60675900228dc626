"""End-to-end harness: real Linux guests in QEMU, served by Causeway device
processes, started through `causeway vm` exactly as a user would.

A VM runs a shell script (given on the kernel command line, base64) and its
console is captured line by line with timestamps. The guest's /init prints
`CAUSEWAY-GUEST: script-start` before the script and `CAUSEWAY-GUEST: exit=N`
after it, then powers off.
"""
import base64
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CAUSEWAY_BUILD", os.path.join(ROOT, "build"))
CAUSEWAY = os.path.join(BUILD, "causeway")
GUEST_DIR = os.environ.get("CAUSEWAY_GUEST", os.path.join(ROOT, "build", "guest"))
KERNEL = os.path.join(GUEST_DIR, "bzImage")
INITRD = os.path.join(GUEST_DIR, "initramfs.cpio.gz")
LOG_DIR = os.environ.get("CAUSEWAY_E2E_LOGS", os.path.join(BUILD, "e2e-logs"))

BASE_CMDLINE = "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check"
# x86 kernels accept at most 2048 bytes of command line.
MAX_CMDLINE = 2000


class Skip(Exception):
    """Raised by a test that cannot run here (the reason says why)."""


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def check_sanitizers(name, text, log_path):
    for mark in SANITIZER_MARKS:
        check(mark not in text, "%s: sanitizer report %r (log %s)" % (name, mark, log_path))


class ConsoleProcess:
    """A child process group whose output lines are collected with the time
    they arrived (seconds since start) and written to a log. VM and
    system_harness.System build on it."""

    def _start(self, args, log_path, header=""):
        self.lines = []  # (time, text)
        self.cond = threading.Condition()
        self.args = args
        self.log_path = log_path
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self.log = open(log_path, "w")
        self.log.write("$ " + " ".join(args) + "\n" + header)
        self.log.flush()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            text = raw.decode(errors="replace").rstrip("\r\n")
            now = time.monotonic() - self.t0
            with self.cond:
                self.lines.append((now, text))
                self.cond.notify_all()
            self.log.write("%8.3f %s\n" % (now, text))
            self.log.flush()
        with self.cond:
            self.cond.notify_all()

    def output(self):
        with self.cond:
            return "\n".join(t for _, t in self.lines)

    def _wait_line(self, pattern, timeout, prefix="", after=None, what=""):
        """The first line starting with prefix (stripped before matching),
        printed after `after` if given, that matches pattern: (match, time).
        Fails once the timeout passes or the process ended without one."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                while seen < len(self.lines):
                    t, text = self.lines[seen]
                    seen += 1
                    if text.startswith(prefix) and (after is None or t > after):
                        m = rx.search(text[len(prefix):])
                        if m:
                            return m, t
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and seen == len(self.lines)
                                 and not self.reader.is_alive()):
                    raise TestFailure("%s: no line%s matching %r within %ds (log %s)"
                                      % (self.name, what, pattern, timeout, self.log_path))
                self.cond.wait(min(left, 0.5))

    def _wait_proc(self, timeout, what):
        """The process's exit status, all its output read; kills it and fails
        after timeout."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure("%s: %s did not finish within %ds (log %s)"
                              % (self.name, what, timeout, self.log_path))
        self.reader.join(5)
        return rc

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


class VM(ConsoleProcess):
    """One `causeway vm` process with its console captured."""

    def __init__(self, name, script, ip=None, mtu=None, nets=(), gmem="persistent",
                 mem="256M", extra_args=(), log_dir=None):
        self.name = name
        cmdline = [BASE_CMDLINE, "cw.name=" + name]
        if ip:
            cmdline.append("cw.ip=" + ip)
        if mtu:
            cmdline.append("cw.mtu=%d" % mtu)
        cmdline.append("cw.script=" + base64.b64encode(script.encode()).decode())
        cmdline = " ".join(cmdline)
        if len(cmdline) > MAX_CMDLINE:
            raise ValueError("guest script too long for the kernel command line (%d bytes)"
                             % len(cmdline))
        args = [CAUSEWAY, "vm", "--name", name, "--kernel", KERNEL, "--initrd", INITRD,
                "--mem", mem, "--gmem", gmem, "--cmdline", cmdline]
        for n in nets:
            args += ["--net", n]
        args += list(extra_args)
        self._start(args, os.path.join(log_dir or LOG_DIR, name + ".log"))

    def wait_for(self, pattern, timeout=120):
        """Wait until a console line matches; returns the match and its time."""
        return self._wait_line(pattern, timeout)

    def wait_exit(self, timeout=240):
        """Wait for the VM to end; returns (causeway vm status, guest script status)."""
        rc = self._wait_proc(timeout, "causeway vm")
        m = re.search(r"CAUSEWAY-GUEST: exit=(\d+)", self.output())
        return rc, (int(m.group(1)) if m else None)

    def expect_success(self, timeout=240):
        rc, guest = self.wait_exit(timeout)
        check_sanitizers(self.name, self.output(), self.log_path)
        check(rc == 0, "%s: causeway vm exited %s (log %s)" % (self.name, rc, self.log_path))
        check(guest == 0, "%s: guest script exited %s (log %s)" % (self.name, guest, self.log_path))

    def pids(self):
        """PIDs of this VM's QEMU and device processes (children of causeway vm)."""
        try:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                 text=True).stdout
        except FileNotFoundError:
            return []
        return [int(p) for p in out.split()]

    def close(self):
        self.kill()
        self.log.close()


class Env:
    """Per-test scratch: a temp dir for link sockets, VMs cleaned up at the end."""

    def __init__(self, test_name):
        self.name = test_name
        self.tmp = tempfile.mkdtemp(prefix="cw-e2e-")
        self.vms = []
        self.procs = []
        self.log_dir = os.path.join(LOG_DIR, test_name)
        os.makedirs(self.log_dir, exist_ok=True)

    def link(self, name="l0"):
        return os.path.join(self.tmp, name + ".sock")

    def vm(self, name, script, **kw):
        kw.setdefault("log_dir", self.log_dir)
        v = VM(name, script, **kw)
        self.vms.append(v)
        return v

    def spawn(self, args, name, **kw):
        log = open(os.path.join(self.log_dir, name + ".log"), "w")
        log.write("$ " + " ".join(args) + "\n")
        log.flush()
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, **kw)
        p.log_path = log.name
        self.procs.append((p, log))
        return p

    def cleanup(self):
        for v in self.vms:
            v.close()
        for p, log in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            log.close()
        for f in os.listdir(self.tmp):
            try:
                os.unlink(os.path.join(self.tmp, f))
            except OSError:
                pass
        os.rmdir(self.tmp)


def two_vm_nets(env, opts_a="", opts_b="", mac_a="52:54:00:00:00:01", mac_b="52:54:00:00:00:02"):
    link = env.link()
    na = "link=%s,mac=%s%s" % (link, mac_a, opts_a)
    nb = "link=%s,mac=%s%s" % (link, mac_b, opts_b)
    return [na], [nb]


def parse_iperf(text, udp=False):
    """Receiver-side Mbit/s values from iperf3 summaries in console text."""
    out = []
    for line in text.splitlines():
        if "receiver" in line:
            m = re.search(r"([\d.]+)\s+([KMG])bits/sec", line)
            if m:
                v = float(m.group(1)) * {"K": 1e-3, "M": 1.0, "G": 1e3}[m.group(2)]
                out.append(v)
    return out
