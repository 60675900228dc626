"""End-to-end helpers for systems: write a system JSON, run `causeway run`
on it, and read each VM's console (and each device's and switch's log) back
by its line prefix.

    sys = System(env, "three", [
        guest("a", script, ip="10.99.0.1/24"),
        guest("b", script, ip="10.99.0.2/24", domain="high"),
    ], policy={"rules": [...]})
    sys.wait_for(r"PINGS-OK", vm="a")
    stats = sys.stats()
    rc = sys.wait_exit()
    sys.guest_exit("a")      # the status the guest image printed

Lines come from the launcher's stdout as `NAME| text` (a VM's console and
its device processes), `switch NAME| text` (a switch), and the launcher's
own `causeway: ...` lines (stderr, merged).
"""
import base64
import gzip
import json
import os
import re
import signal
import subprocess
import time

from harness import BASE_CMDLINE, CAUSEWAY, INITRD, KERNEL, MAX_CMDLINE, ConsoleProcess, check, \
    check_sanitizers


def guest(name, script, ip=None, mac=None, switch="sw0", domain="lab", mtu=None, ip6=None,
          memory="256M", nic_extra=None, timeout=None, **vm_extra):
    """A VM entry running the test guest image with `script` (one NIC)."""
    cmdline = [BASE_CMDLINE, "cw.name=" + name]
    if ip:
        cmdline.append("cw.ip=" + ip)
    if ip6:
        cmdline.append("cw.ip6=" + ip6)
    if mtu:
        cmdline.append("cw.mtu=%d" % mtu)
    if timeout:
        cmdline.append("cw.timeout=%d" % timeout)
    z = base64.b64encode(gzip.compress(script.encode(), mtime=0)).decode()
    cmdline.append("cw.scriptz=" + z)
    cmdline = " ".join(cmdline)
    if len(cmdline) > MAX_CMDLINE:
        raise ValueError("guest script too long for the kernel command line (%d bytes)"
                         % len(cmdline))
    nic = {"switch": switch, "domain": domain}
    if mac:
        nic["mac"] = mac
    if ip:
        nic["ipv4"] = ip
    if ip6:
        nic["ipv6"] = ip6
    if mtu:
        nic["mtu"] = mtu
    nic.update(nic_extra or {})
    vm = {"name": name, "kernel": KERNEL, "initrd": INITRD, "cmdline": cmdline,
          "memory": memory, "vcpus": 1, "nics": [nic]}
    vm.update(vm_extra)
    return vm


def write_system(env, name, vms, switches=None, uplinks=None, policy=None, on_failure=None):
    """Write the system JSON into the test's scratch dir; returns its path.
    MACs default to 52:54:00:00:00:NN in VM order."""
    for i, vm in enumerate(vms):
        for k, nic in enumerate(vm.get("nics", [])):
            nic.setdefault("mac", "52:54:00:00:%02x:%02x" % (k, i + 1))
    desc = {"vms": vms,
            "switches": switches or [{"name": s} for s in
                                     sorted({n["switch"] for v in vms for n in v.get("nics", [])})]}
    if uplinks:
        desc["uplinks"] = uplinks
    if policy:
        desc["policy"] = policy
    if on_failure:
        desc["on_failure"] = on_failure
    path = os.path.join(env.tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(desc, f, indent=1)
    return path


class System(ConsoleProcess):
    """One `causeway run` with its output captured and split by prefix."""

    def __init__(self, env, name, vms, extra_args=(), **kw):
        self.env = env
        self.name = name
        self.path = write_system(env, name, vms, **kw)
        self.vm_names = [v["name"] for v in vms]
        with open(self.path) as f:
            header = f.read() + "\n"
        self._start([CAUSEWAY, "run"] + list(extra_args) + [self.path],
                    os.path.join(env.log_dir, name + ".log"), header)
        env.vms.append(self)  # Env.cleanup() calls close()

    # --- output ---

    def console(self, vm):
        """Everything printed with the `vm| ` prefix (console and device logs)."""
        p = vm + "| "
        with self.cond:
            return "\n".join(t[len(p):] for _, t in self.lines if t.startswith(p))

    def switch_log(self, sw="sw0"):
        p = "switch %s| " % sw
        with self.cond:
            return "\n".join(t[len(p):] for _, t in self.lines if t.startswith(p))

    def launcher_log(self):
        with self.cond:
            return "\n".join(t for _, t in self.lines if t.startswith("causeway: "))

    def wait_for(self, pattern, vm=None, timeout=120, after=None):
        """Wait for a line (of one VM's prefix, if given) matching pattern;
        with `after` (a time wait_for returned), only a line printed later.
        Returns the match and the line's time."""
        return self._wait_line(pattern, timeout, prefix=vm + "| " if vm else "", after=after,
                               what=" of " + vm if vm else "")

    def guest_exit(self, vm):
        m = re.findall(r"^CAUSEWAY-GUEST: exit=(\d+)", self.console(vm), re.M)
        return int(m[-1]) if m else None

    def control_socket(self, timeout=30):
        m, _ = self.wait_for(r"^causeway: system control socket: (\S+)", timeout=timeout)
        return m.group(1)

    # --- the run ---

    def wait_exit(self, timeout=240):
        rc = self._wait_proc(timeout, "causeway run")
        check_sanitizers(self.name, self.output(), self.log_path)
        return rc

    def expect_success(self, timeout=240):
        rc = self.wait_exit(timeout)
        for vm in self.vm_names:
            check(self.guest_exit(vm) == 0, "%s: guest %s exited %s (log %s)"
                  % (self.name, vm, self.guest_exit(vm), self.log_path))
        check(rc == 0, "%s: causeway run exited %s (log %s)" % (self.name, rc, self.log_path))

    def stats(self, args=("--json",)):
        """`causeway stats --json` against this system's socket, parsed."""
        sock = self.control_socket()
        out = subprocess.run([CAUSEWAY, "stats", "--socket", sock] + list(args),
                             capture_output=True, text=True, timeout=30)
        check(out.returncode == 0, "causeway stats failed (%d): %s" % (out.returncode,
                                                                       out.stderr))
        return json.loads(out.stdout) if "--json" in args else out.stdout

    # --- the processes ---

    def children(self):
        """{("qemu", vm) | ("device", "vm/nicI") | ("switch", name): pid} of this launcher."""
        out = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.proc.pid:
                    continue
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            argv = [a.decode(errors="replace") for a in argv]
            if "-name" in argv:
                # "guest=NAME,debug-threads=on"
                opts = dict(o.split("=", 1) for o in argv[argv.index("-name") + 1].split(",")
                            if "=" in o)
                out[("qemu", opts.get("guest", ""))] = int(pid)
            elif len(argv) > 1 and argv[1] in ("device", "switch") and "--name" in argv:
                out[(argv[1], argv[argv.index("--name") + 1])] = int(pid)
        return out

    def pid_of(self, kind, name, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            pid = self.children().get((kind, name))
            if pid or time.monotonic() > deadline:
                check(pid, "%s: no %s process %s under the launcher" % (self.name, kind, name))
                return pid
            time.sleep(0.2)

    def kill_child(self, kind, name, sig=signal.SIGKILL):
        pid = self.pid_of(kind, name)
        os.kill(pid, sig)
        return pid

    def close(self):
        # SIGTERM first: the launcher stops its children and removes its
        # runtime directory; SIGKILL (children follow by PDEATHSIG) if not.
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self.reader.join(5)
        self.log.close()
