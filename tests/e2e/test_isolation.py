"""Isolation of the device processes (src/util/sandbox.c, src/util/fds.c).

Every device runs sandboxed by default, so every other e2e test already runs
with it on; these tests look at the sandbox itself, from outside, as root:
- a device's /proc/PID/status: seccomp filter mode, no_new_privs, every
  capability set empty; --no-sandbox really turns it off;
- fds a device inherits beyond stdio and --event-fd are closed at start;
- in a running VM pair, each device maps only its own guest's memory and
  its port (memfd inodes in /proc/PID/maps), and holds only its own fds
  (memfds, eventfds by eventfd-id, pipes, unix socket peers), nothing of the
  other VM's QEMU or supervisor;
- the sandboxed paths that come late: a link peer dying and a new one
  arriving (port re-created inside the sandbox), a new vhost-user frontend on
  a running device (new guest memory mapped inside the sandbox);
- the test-only trigger CAUSEWAY_SANDBOX_SELFTEST kills a device with SIGSYS,
  and `causeway vm` and `causeway run` report it by name and signal.
"""
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from harness import CAUSEWAY, Skip, check, check_sanitizers, two_vm_nets

A_IP, B_IP = "10.99.0.1", "10.99.0.2"
SELFTEST = "CAUSEWAY_SANDBOX_SELFTEST"
ZERO_CAPS = "0000000000000000"

WAIT_PEER = """
n=0; until ping -c 1 -W 1 {peer} >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 90 ] || exit {code}; sleep 1; done
"""


@contextlib.contextmanager
def environ(**kw):
    """Children started inside inherit these variables (Popen copies os.environ)."""
    old = {k: os.environ.get(k) for k in kw}
    os.environ.update(kw)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------- reading /proc ----------

def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


SCHED_OTHER, SCHED_BATCH = 0, 3


def sched_policy(pid):
    """Field 41 of /proc/PID/stat (after the parenthesised command name)."""
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    return int(text[text.rindex(")") + 2:].split()[38])


def check_sandboxed(pid, what):
    st = proc_status(pid)
    check(st.get("Seccomp") == "2", "%s: Seccomp is %r, not 2 (filter)" % (what, st.get("Seccomp")))
    check(st.get("NoNewPrivs") == "1", "%s: NoNewPrivs is %r" % (what, st.get("NoNewPrivs")))
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        check(st.get(cap) == ZERO_CAPS, "%s: %s is %s, not empty" % (what, cap, st.get(cap)))


def argv_of(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]


def children_of(pid):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(p))
    return out


def vm_processes(vm):
    """{"vm": supervisor, "qemu": pid, "device": pid} of one `causeway vm`."""
    procs = {"vm": vm.proc.pid}
    for pid in children_of(vm.proc.pid):
        argv = argv_of(pid)
        if len(argv) > 1 and argv[1] == "device":
            procs["device"] = pid
        elif argv and "qemu" in os.path.basename(argv[0]):
            procs["qemu"] = pid
    check("device" in procs and "qemu" in procs,
          "%s: expected a QEMU and a device under causeway vm, got %r" % (vm.name, procs))
    return procs


def memfd_maps(pid):
    """{inode: name} of the memfds mapped by a process."""
    out = {}
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/memfd:"):
                out[int(parts[4])] = parts[5].strip()
    return out


def fds(pid):
    """[(fd, kind, identity)] of a process. kind: memfd, file, pipe, socket,
    eventfd, or the anon_inode type; identity: an inode, or an eventfd-id."""
    out = []
    base = "/proc/%d/fd" % pid
    for name in os.listdir(base):
        fd = int(name)
        try:
            target = os.readlink(os.path.join(base, name))
        except OSError:
            continue  # closed meanwhile
        m = re.match(r"(pipe|socket):\[(\d+)\]$", target)
        if m:
            out.append((fd, m.group(1), int(m.group(2))))
        elif target == "anon_inode:[eventfd]":
            with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
                eid = re.search(r"^eventfd-id:\s*(\d+)", f.read(), re.M)
            out.append((fd, "eventfd", int(eid.group(1)) if eid else None))
        elif target.startswith("anon_inode:"):
            out.append((fd, target[len("anon_inode:"):], None))
        elif target.startswith("/memfd:"):
            out.append((fd, "memfd", os.stat(os.path.join(base, name)).st_ino))
        else:
            out.append((fd, "file", target))
    return out


def idents(pid, kind):
    return {i for _, k, i in fds(pid) if k == kind}


def unix_peers():
    """{socket inode: peer inode} of every unix socket (ss -xa)."""
    out = {}
    res = subprocess.run(["ss", "-x", "-a", "-n"], capture_output=True, text=True, timeout=30)
    for line in res.stdout.splitlines()[1:]:
        f = line.split()
        # Netid State Recv-Q Send-Q Local Port Peer Port
        if len(f) >= 8 and f[5].isdigit() and f[7].isdigit():
            out[int(f[5])] = int(f[7])
    return out


# ---------- the sandbox of a standalone device, and the fd closer ----------

def start_device(env, name, extra=(), pass_fds=()):
    """A `causeway device` with an event pipe; returns (proc, event read end)."""
    rd, wr = os.pipe()
    sock = os.path.join(env.tmp, name + ".sock")
    args = [CAUSEWAY, "device", "--name", name, "--socket", sock,
            "--link", env.link(name + "-link"), "--event-fd", str(wr)] + list(extra)
    p = env.spawn(args, name, pass_fds=(wr,) + tuple(pass_fds))
    os.close(wr)
    return p, rd


def wait_ready(p, rd, timeout=20):
    deadline = time.monotonic() + timeout
    buf = b""
    os.set_blocking(rd, False)
    while b"ready\n" not in buf:
        check(p.poll() is None, "device exited early (%s, log %s)" % (p.returncode, p.log_path))
        check(time.monotonic() < deadline, "device not ready (log %s)" % p.log_path)
        try:
            buf += os.read(rd, 256)
        except BlockingIOError:
            time.sleep(0.05)
    # "ready" is written just before entering the sandbox: give it a moment.
    deadline = time.monotonic() + 5
    while "sandbox: entered" not in open(p.log_path).read() and time.monotonic() < deadline:
        time.sleep(0.05)


def stop(p):
    p.send_signal(signal.SIGTERM)
    return p.wait(10)


def test_standalone_device_sandbox_and_fds(env):
    # Fds a careless launcher could leak: a file, another "VM's" memfd, a socket.
    leak_file = os.open("/etc/hostname", os.O_RDONLY)
    leak_memfd = os.memfd_create("other-guest-ram", 0)
    os.ftruncate(leak_memfd, 1 << 20)
    leak_a, leak_b = socket.socketpair()
    leaked = (leak_file, leak_memfd, leak_a.fileno())
    try:
        p, rd = start_device(env, "sbx", pass_fds=leaked)
        wait_ready(p, rd)
        check_sandboxed(p.pid, "device")
        check(sched_policy(p.pid) == SCHED_BATCH,
              "device: scheduling policy %d, not SCHED_BATCH" % sched_policy(p.pid))
        table = fds(p.pid)
        kinds = {fd: (k, i) for fd, k, i in table}
        inode = os.fstat(leak_memfd).st_ino
        check(not any(k == "memfd" and i == inode for _, k, i in table),
              "the leaked memfd is still open in the device: %r" % table)
        check(not any(k == "file" and i == "/etc/hostname" for _, k, i in table),
              "the leaked file is still open in the device: %r" % table)
        sock_inode = os.fstat(leak_a.fileno()).st_ino
        check(not any(k == "socket" and i == sock_inode for _, k, i in table),
              "the leaked socket is still open in the device: %r" % table)
        check(any(k == "pipe" for k, _ in kinds.values()), "the --event-fd pipe was closed: %r"
              % table)
        out = open(p.log_path).read()
        check("sandbox: entered" in out, "no sandbox line (log %s)" % p.log_path)
        check(stop(p) == 0, "sandboxed device did not stop cleanly (log %s)" % p.log_path)
        check_sanitizers("device", open(p.log_path).read(), p.log_path)
        os.close(rd)

        # --no-sandbox: the same device, unconfined (debugging only); and
        # --sched normal leaves it in the default class.
        q, rd = start_device(env, "nosbx", extra=["--no-sandbox", "--sched", "normal"])
        wait_ready(q, rd, timeout=20)
        check(sched_policy(q.pid) == SCHED_OTHER,
              "--sched normal: policy %d, not SCHED_OTHER" % sched_policy(q.pid))
        st = proc_status(q.pid)
        check(st["Seccomp"] == "0", "--no-sandbox still has Seccomp %s" % st["Seccomp"])
        if os.geteuid() == 0:
            check(st["CapEff"] != ZERO_CAPS, "--no-sandbox dropped capabilities anyway")
        check("sandbox: entered" not in open(q.log_path).read(), "--no-sandbox entered it")
        check(stop(q) == 0, "unsandboxed device did not stop cleanly (log %s)" % q.log_path)
        os.close(rd)
    finally:
        os.close(leak_file)
        os.close(leak_memfd)
        leak_a.close()
        leak_b.close()


# ---------- a VM pair: what each device maps and holds ----------

def check_device_holds_only_its_own(mine, other):
    """mine/other: vm_processes() of the two VMs of a link."""
    dev, qemu = mine["device"], mine["qemu"]
    what = "device pid %d" % dev
    check_sandboxed(dev, what)

    # Memory: our guest's memfd(s) and the port, nothing of the other guest.
    dmaps, qmaps = memfd_maps(dev), memfd_maps(qemu)
    other_q = memfd_maps(other["qemu"])
    ports = {i for i, n in dmaps.items() if "causeway-port" in n}
    guest = set(dmaps) & set(qmaps)
    check(guest, "%s maps none of its QEMU's memfds: %r vs %r" % (what, dmaps, qmaps))
    check(len(ports) == 1, "%s maps %d ports, expected 1: %r" % (what, len(ports), dmaps))
    check(set(dmaps) == guest | ports,
          "%s maps memfds that are neither its guest's nor its port: %r" % (what, dmaps))
    check(not set(dmaps) & set(other_q),
          "%s maps the other guest's memory: %r & %r" % (what, dmaps, other_q))
    check(ports == {i for i, n in memfd_maps(other["device"]).items() if "causeway-port" in n},
          "the two devices do not share one port memfd")
    check(not ports & (set(qmaps) | set(other_q)), "a QEMU maps the port")

    # Fds, by identity.
    table = fds(dev)
    mine_ids = {k: set() for k in ("memfd", "eventfd", "socket", "pipe")}
    other_ids = {k: set() for k in mine_ids}
    for p in (mine["qemu"], mine["vm"]):
        for _, k, i in fds(p):
            if k in mine_ids:
                mine_ids[k].add(i)
    for p in (other["qemu"], other["vm"]):
        for _, k, i in fds(p):
            if k in other_ids:
                other_ids[k].add(i)
    peer_dev = {k: idents(other["device"], k) for k in ("memfd", "eventfd", "socket")}
    peers = unix_peers()
    unexpected = []
    for fd, kind, ident in table:
        if kind == "memfd":
            ok = ident in mine_ids["memfd"] or ident in ports
        elif kind == "eventfd":
            # Kick/call eventfds come from our QEMU; port eventfds are shared
            # with the peer device. None may be the other QEMU's.
            ok = ident is not None and ident not in other_ids["eventfd"] and (
                ident in mine_ids["eventfd"] or ident in peer_dev["eventfd"])
        elif kind == "pipe":
            ok = ident in mine_ids["pipe"] and ident not in other_ids["pipe"]
        elif kind == "socket":
            peer = peers.get(ident, 0)
            ok = peer not in other_ids["socket"] and (
                peer == 0 or peer in mine_ids["socket"] or peer in peer_dev["socket"])
        elif kind in ("[eventpoll]", "[timerfd]", "[signalfd]"):
            ok = True  # created by the device itself
        elif kind == "file":
            ok = fd <= 2 and ident == "/dev/null"
        else:
            ok = False
        if not ok:
            unexpected.append((fd, kind, ident))
    check(not unexpected, "%s holds fds that are not its own: %r (all: %r)"
          % (what, unexpected, table))
    # And the converse, for memory: not one of the other guest's memfds.
    check(not {i for _, k, i in table if k == "memfd"} & set(other_q),
          "%s holds an fd of the other guest's memory" % what)


def test_pair_devices_hold_only_their_own(env):
    na, nb = two_vm_nets(env)
    a = env.vm("a", WAIT_PEER.format(peer=B_IP, code=10) + """
echo PEER-UP
nc -l -p 9000 >/dev/null
echo a-done
""", ip=A_IP + "/24", nets=na)
    b = env.vm("b", WAIT_PEER.format(peer=A_IP, code=10) + """
echo PEER-UP
sleep 8
ping -c 3 -i 0.2 {peer} || exit 11
n=0; until echo done | nc {peer} 9000; do n=$((n+1)); [ $n -lt 20 ] || exit 12; sleep 0.5; done
""".format(peer=A_IP), ip=B_IP + "/24", nets=nb)
    a.wait_for("PEER-UP", timeout=180)
    b.wait_for("PEER-UP", timeout=60)
    pa, pb = vm_processes(a), vm_processes(b)
    check_device_holds_only_its_own(pa, pb)
    check_device_holds_only_its_own(pb, pa)
    b.expect_success(timeout=120)
    a.expect_success(timeout=60)


# ---------- late paths inside the sandbox ----------

def test_peer_dies_and_returns(env):
    # b1 starts first and listens on the link; a connects. b1 is SIGKILLed:
    # a (sandboxed since long) finds the stale socket, removes it, listens,
    # and creates a new port for b2 -- all inside its sandbox.
    na, nb = two_vm_nets(env)
    b1 = env.vm("b1", "sleep 600\n", ip=B_IP + "/24", nets=nb)
    b1.wait_for(r"device b1/nic0: sandbox: entered", timeout=30)
    a = env.vm("a", WAIT_PEER.format(peer=B_IP, code=10) + """
echo PEER-UP
n=0; while [ "$(cat /sys/class/net/eth0/carrier)" = 1 ]; do n=$((n+1)); [ $n -lt 300 ] || exit 20; sleep 0.2; done
echo CARRIER-DOWN
n=0; until [ "$(cat /sys/class/net/eth0/carrier)" = 1 ]; do n=$((n+1)); [ $n -lt 600 ] || exit 21; sleep 0.2; done
""" + WAIT_PEER.format(peer=B_IP, code=22) + """
ping -c 3 -i 0.2 {peer} || exit 23
echo PEER-BACK
nc -l -p 9000 >/dev/null
""".format(peer=B_IP), ip=A_IP + "/24", nets=na)
    a.wait_for("PEER-UP", timeout=180)
    dev_a = vm_processes(a)["device"]
    os.kill(b1.proc.pid, signal.SIGKILL)  # its children follow (PDEATHSIG)
    a.wait_for("CARRIER-DOWN", timeout=60)
    b2 = env.vm("b2", WAIT_PEER.format(peer=A_IP, code=10) + """
ping -c 3 -i 0.2 {peer} || exit 11
n=0; until echo done | nc {peer} 9000; do n=$((n+1)); [ $n -lt 40 ] || exit 12; sleep 0.5; done
""".format(peer=A_IP), ip=B_IP + "/24", nets=nb)
    a.wait_for("PEER-BACK", timeout=180)
    check(vm_processes(a)["device"] == dev_a, "a's device process was replaced")
    check_sandboxed(dev_a, "a's device")
    b2.expect_success(timeout=120)
    a.expect_success(timeout=60)
    out = a.output()
    check(len(re.findall(r"device a/nic0: link up", out)) >= 2,
          "a's device did not bring the link up twice")
    check(out.count("sandbox: entered") == 1, "a's device entered the sandbox more than once")


TESTPMD = "dpdk-testpmd"


def testpmd(env, sock, prefix, mode, name):
    args = [TESTPMD, "-l", "0,1", "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", prefix,
            "--vdev", "net_virtio_user0,path=%s,queue_size=1024" % sock, "--",
            "--total-num-mbufs=16384", "--forward-mode=%s" % mode, "--nb-cores=1"]
    return env.spawn(args, name, stdin=subprocess.PIPE)


def end(p):
    p.stdin.close()  # testpmd without -i runs until its stdin ends
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()


def test_new_frontend_on_sandboxed_device(env):
    # Two successive frontends (a VM reboot, a restarted QEMU) on one running
    # device: the second memory table is received and mapped in the sandbox.
    if not shutil.which(TESTPMD):
        raise Skip("dpdk-testpmd not installed (Debian package dpdk-dev)")
    link = env.link()
    socks = {n: os.path.join(env.tmp, n + ".sock") for n in ("a", "b")}
    devs = {n: env.spawn([CAUSEWAY, "device", "--name", n, "--socket", socks[n], "--link", link],
                         "device-" + n) for n in ("a", "b")}
    time.sleep(0.5)
    rx = testpmd(env, socks["b"], "cw-iso-rx", "rxonly", "testpmd-rx")
    time.sleep(3)
    sent = []
    for i in range(2):
        tx = testpmd(env, socks["a"], "cw-iso-tx%d" % i, "txonly", "testpmd-tx%d" % i)
        time.sleep(6)
        end(tx)
        block = open(tx.log_path).read().split("Accumulated forward statistics")[-1]
        m = re.search(r"TX-packets:\s*(\d+)", block)
        sent.append(int(m.group(1)) if m else 0)
        time.sleep(1)
    end(rx)
    codes = {n: stop(p) for n, p in devs.items()}
    out = {n: open(p.log_path).read() for n, p in devs.items()}
    for n in ("a", "b"):
        check_sanitizers("device " + n, out[n], devs[n].log_path)
        check(codes[n] == 0, "device %s ended with %s (log %s)" % (n, codes[n], devs[n].log_path))
    check(out["a"].count("frontend connected") == 2,
          "device a did not serve two frontends (log %s)" % devs["a"].log_path)
    check(all(s > 1000 for s in sent), "a testpmd session sent too little: %r" % sent)
    m = re.search(r"stats link=\S+ tx_frames=(\d+)", out["a"])
    check(m and int(m.group(1)) >= 0.9 * sum(sent),
          "device a forwarded %s of %d frames" % (m and m.group(1), sum(sent)))


# ---------- the test-only trigger ----------

KILLED_BY_SIGSYS = r"killed by (SIGSYS \(signal 31\)|signal 31)"


def test_selftest_kills_device_under_vm(env):
    na, _ = two_vm_nets(env)
    with environ(**{SELFTEST: "1"}):
        v = env.vm("st", "echo should-not-matter\n", ip=A_IP + "/24", nets=na)
    rc, _ = v.wait_exit(timeout=60)
    out = v.output()
    check(rc == 1, "causeway vm exited %s, expected 1 (log %s)" % (rc, v.log_path))
    check("sandbox selftest: opening a TCP socket" in out, "the selftest did not run")
    check(re.search(r"causeway vm st: device process of nic0 " + KILLED_BY_SIGSYS, out),
          "causeway vm did not report the device killed by SIGSYS (log %s)" % v.log_path)
    check("selftest: FAILED" not in out, "the forbidden call was not stopped")


def test_selftest_kills_device_under_run(env):
    from system_harness import System, guest
    with environ(**{SELFTEST: "device"}):
        s = System(env, "selftest", [guest("st", "sleep 600\n", ip=A_IP + "/24")],
                   on_failure="stop")
    s.wait_for(r"^causeway: st/nic0: device process " + KILLED_BY_SIGSYS, timeout=60)
    rc = s.wait_exit(timeout=60)
    check(rc != 0, "causeway run exited 0 after a device was killed")
    check("selftest: FAILED" not in s.output(), "the forbidden call was not stopped")


def test_selftest_kills_switch_under_run(env):
    from system_harness import System, guest
    with environ(**{SELFTEST: "switch"}):
        s = System(env, "selftest-sw", [guest("st", "sleep 600\n", ip=A_IP + "/24")])
    s.wait_for(r"^causeway: switch sw0: " + KILLED_BY_SIGSYS, timeout=30)
    check("selftest: FAILED" not in s.output(), "the forbidden call was not stopped")
    check("sandbox selftest: opening a TCP socket" in s.switch_log(), "the selftest did not run")


def test_switch_sandboxed_and_maps_no_guest_memory(env):
    from system_harness import System, guest
    s = System(env, "switch-iso", [guest("st", "echo GUEST-UP\nsleep 600\n", ip=A_IP + "/24")])
    s.wait_for(r"^GUEST-UP", vm="st", timeout=120)
    sw = s.pid_of("switch", "sw0")
    qemu = s.pid_of("qemu", "st")
    dev = s.pid_of("device", "st/nic0")
    check_sandboxed(dev, "device st/nic0")
    # Ports only, never guest memory, whether or not the switch is sandboxed.
    smaps = memfd_maps(sw)
    check(smaps and all("causeway-port" in n for n in smaps.values()),
          "the switch maps memfds other than ports: %r" % smaps)
    check(not set(smaps) & set(memfd_maps(qemu)), "the switch maps guest memory")
    check(set(smaps) == {i for i, n in memfd_maps(dev).items() if "causeway-port" in n},
          "the switch and the device do not share exactly the device's port")
    check(not {i for _, k, i in fds(sw) if k == "memfd"} & idents(qemu, "memfd"),
          "the switch holds a guest memory fd")
    check("sandbox: entered" in s.switch_log(), "the switch did not say it entered its sandbox")
    check_sandboxed(sw, "switch sw0")
    # A woken switch or device must not preempt its busy neighbours
    # (src/util/sched.h): both run as SCHED_BATCH under causeway run.
    check(sched_policy(sw) == SCHED_BATCH, "switch: policy %d, not SCHED_BATCH" % sched_policy(sw))
    check(sched_policy(dev) == SCHED_BATCH, "device: policy %d, not SCHED_BATCH" % sched_policy(dev))
