"""A Causeway switch with standalone NIC devices, for a vhost-user frontend
that is not a VM (DPDK's virtio-user): the benchmark's own small launcher.

`causeway run` describes NICs only as parts of VMs and starts a QEMU for
each, so it cannot serve an external frontend. This module does, at the
process level, what the launcher does for a NIC (docs/CONTROL.md,
src/system/launcher_spawn.c): start `causeway switch --control-fd`, send it
its config, start one `causeway device --control-fd` per NIC, and hand each
pair a fresh port (memfd + 4 eventfds), the switch first. It is a bench
tool, not a second launcher: no restarts, no carrier relay, no policy
beyond one domain; a failure raises and the caller stops everything.

The one thing duplicated from the product is the port's shared-memory size
(cw_port_shm_size). It is not trusted blindly: both the switch and the
device check the memfd's size on attach, and start() waits for each
device's `link up` event, so a mismatch fails the run instead of
measuring nothing.
"""
import fcntl
import json
import os
import select
import socket
import subprocess
import time

# src/port/port.h: CW_PORT_DEFAULT_CAPACITY, the launcher's choice.
CAPACITY = 1 << 20
# src/port/port.c: cw_port_shm_size() = 2 rings, each the ring header
# (struct cw_ring_shared: three 64-byte-aligned parts, 128 bytes) plus the
# capacity, rounded up to PORT_PAGE (4096, fixed by the protocol).
PORT_PAGE = 4096
RING_HEADER = 128
MAX_MSG = 256 * 1024


def port_shm_size(capacity):
    stride = (RING_HEADER + capacity + PORT_PAGE - 1) // PORT_PAGE * PORT_PAGE
    return 2 * stride


def port_fds(capacity):
    """A fresh port as cw_port_fds_create makes it: a zero-filled memfd of
    exactly port_shm_size, sealed against shrinking and growing (and further
    seals), and four non-blocking eventfds, in the order the protocol sends
    them: memfd, ring 0 data, ring 0 space, ring 1 data, ring 1 space."""
    memfd = os.memfd_create("cwbench-port", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    fds = [memfd]
    try:
        os.ftruncate(memfd, port_shm_size(capacity))
        fcntl.fcntl(memfd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        for _ in range(4):
            fds.append(os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC))
    except OSError:
        for fd in fds:
            os.close(fd)
        raise
    return fds


class Child:
    """One `causeway switch` or `causeway device` with its control socket."""

    def __init__(self, name, args, log_path, cpu):
        self.name = name
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ctl = ours
        argv = ["taskset", "-c", str(cpu)] + args + ["--control-fd", str(theirs.fileno())]
        with open(log_path, "w") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            # taskset execs the program: this pid is the switch or device itself.
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, pass_fds=[theirs.fileno()],
                                         start_new_session=True)
        theirs.close()

    def send(self, msg, fds=()):
        socket.send_fds(self.ctl, [json.dumps(msg).encode()], list(fds))

    def recv(self, timeout):
        """The next message (dict), or None at the deadline or hang-up.
        Fds a child might attach are closed: we take none."""
        r, _, _ = select.select([self.ctl], [], [], max(0.0, timeout))
        if not r:
            return None
        data, fds, _, _ = socket.recv_fds(self.ctl, MAX_MSG, 8)
        for fd in fds:
            os.close(fd)
        if not data:
            return None
        return json.loads(data)

    def wait_msg(self, want, timeout, what):
        """Read messages until want(msg) is true; an error reply or the
        child's end fails the start."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            msg = self.recv(min(left, 0.5)) if left > 0 else None
            if msg is not None:
                if msg.get("op") == "error":
                    raise RuntimeError("%s: %s refused: %s" % (self.name, what, msg.get("error")))
                if want(msg):
                    return msg
                continue
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with status %s while waiting for %s"
                                   % (self.name, self.proc.returncode, what))
            if left <= 0:
                raise RuntimeError("%s: no %s within %ds" % (self.name, what, timeout))

    def stop(self):
        # A device or switch whose control socket hangs up exits by itself;
        # SIGTERM makes it immediate, SIGKILL is the last resort.
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.ctl.close()


def is_event(name, **fields):
    def match(m):
        return (m.get("op") == "event" and m.get("event") == name
                and all(m.get(k) == v for k, v in fields.items()))
    return match


class SwitchMiddle:
    """One switch `sw0` with one NIC device per (name, socket, mac), all in
    domain `bench` (so no policy rule is evaluated), no IP addresses
    configured (so any IP source passes; the source MAC is still checked).
    Every process is pinned to `cpu`."""

    def __init__(self, causeway, nics, logs, tag, cpu, extra=(), timeout=30):
        """extra: options for the switch and every device (e.g. --busy-poll)."""
        self.children = []
        try:
            sw = Child("switch", [causeway, "switch", "--name", "sw0"] + list(extra),
                       os.path.join(logs, "%s-switch.log" % tag), cpu)
            self.children.append(sw)
            self.switch = sw
            sw.send({"op": "config", "name": "sw0", "domains": ["bench"], "rules": [],
                     "ports": [{"id": k, "name": "%s/nic0" % name, "kind": "nic", "mac": mac,
                                "domain": "bench", "ipv4": [], "ipv6": []}
                               for k, (name, _, mac) in enumerate(nics)]})
            sw.wait_msg(is_event("ready"), timeout, "config")
            for k, (name, sock, mac) in enumerate(nics):
                dev = Child("device %s" % name,
                            [causeway, "device", "--name", "%s/nic0" % name, "--socket", sock,
                             "--mac", mac, "--offloads", "on"] + list(extra),
                            os.path.join(logs, "%s-device-%s.log" % (tag, name)), cpu)
                self.children.append(dev)
                dev.wait_msg(is_event("ready"), timeout, "ready")
                fds = port_fds(CAPACITY)
                try:
                    # The switch first, as the launcher does: frames the device
                    # sends as soon as it attaches find the switch's side ready.
                    sw.send({"op": "port", "id": k, "side": 0, "capacity": CAPACITY}, fds)
                    dev.send({"op": "port", "side": 1, "capacity": CAPACITY}, fds)
                finally:
                    for fd in fds:
                        os.close(fd)
                dev.wait_msg(is_event("link", up=True), timeout, "link up")
        except BaseException:
            self.stop()
            raise

    def pids(self):
        """The switch's pid first, then the devices' (each is the process
        itself: taskset execs)."""
        return [c.proc.pid for c in self.children]

    def switch_stats(self, timeout=5):
        """The switch's stats reply (docs/CONTROL.md), or None."""
        self.switch.send({"op": "stats", "seq": 1})
        try:
            return self.switch.wait_msg(lambda m: m.get("op") == "stats", timeout, "stats")
        except RuntimeError:
            return None

    def stop(self):
        for c in reversed(self.children):
            c.stop()
        self.children = []
