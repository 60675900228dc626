"""Recovery: a guest reloading its driver, and a peer VM killed outright."""
import os
import re
import signal
import time

from harness import check, two_vm_nets

A_IP, B_IP = "10.99.0.1", "10.99.0.2"

WAIT_PEER = """
n=0; until ping -c 1 -W 1 {peer} >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 90 ] || exit 10; sleep 1; done
"""


def test_driver_reload_recovers(env):
    # The guest resets the device (rmmod) and brings it back (modprobe): the
    # frontend stops the rings (GET_VRING_BASE) and sets them up again.
    na, nb = two_vm_nets(env)
    # a only waits for b's "done"; it listens from its first moment.
    a = env.vm("a", "nc -l -p 9000 >/dev/null\n", ip=A_IP + "/24", nets=na)
    b = env.vm("b", "set -e\n" + WAIT_PEER.format(peer=A_IP) + """
rmmod virtio_net
ip link show eth0 && exit 20 || true
modprobe virtio_net
ip addr add {me}/24 dev eth0
ip link set eth0 up
n=0; until ping -c 1 -W 1 {peer} >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 30 ] || exit 21; sleep 1; done
ping -c 5 -i 0.2 {peer}
echo reload-ok
n=0; until echo done | nc {peer} 9000; do n=$((n+1)); [ $n -lt 30 ] || exit 22; sleep 1; done
""".format(me=B_IP, peer=A_IP), ip=B_IP + "/24", nets=nb)
    b.expect_success(timeout=240)
    a.expect_success(timeout=60)
    check("reload-ok" in b.output(), "guest did not reach the end of the reload script")
    check(" 0% packet loss" in b.output(), "ping after reload lost packets")


def test_peer_killed_link_down(env):
    na, nb = two_vm_nets(env)
    a = env.vm("a", "sleep 600\n", ip=A_IP + "/24", nets=na)
    b = env.vm("b", WAIT_PEER.format(peer=A_IP) + """
echo PEER-UP
n=0; while [ "$(cat /sys/class/net/eth0/carrier)" = 1 ]; do n=$((n+1)); [ $n -lt 300 ] || exit 30; sleep 0.2; done
echo CARRIER-DOWN
ping -c 2 -W 1 {peer} && exit 31
echo still-running
""".format(peer=A_IP), ip=B_IP + "/24", nets=nb)
    b.wait_for("PEER-UP", timeout=180)
    a_children = a.pids()
    check(len(a_children) == 2, "expected QEMU + device under vm a, got %r" % a_children)
    os.kill(a.proc.pid, signal.SIGKILL)  # only the supervisor: its children must follow
    b.wait_for("CARRIER-DOWN", timeout=60)
    b.expect_success(timeout=60)
    check(re.search(r"device b/nic0: link down", b.output()), "b's device did not report link down")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists("/proc/%d" % p) for p in a_children):
        time.sleep(0.2)
    check(not any(os.path.exists("/proc/%d" % p) for p in a_children),
          "a's QEMU or device process outlived its killed supervisor")
