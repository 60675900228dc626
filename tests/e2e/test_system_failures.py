"""`causeway run` under failures: a device process killed is restarted and its
guest recovers (carrier down, then up, then traffic); so does a switch; a
QEMU killed leaves the other VMs serving; SIGTERM stops everything cleanly; with
"on_failure": "stop" a failed guest stops the whole system."""
import os
import signal
import time

from harness import check
from system_harness import System, guest

IPS = {"a": "10.99.0.1", "b": "10.99.0.2", "c": "10.99.0.3"}

REACH = """n=0; until ping -c 1 -W 1 {p} >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 90 ] || exit {code}; sleep 0.5; done
"""

# b: reach both peers, then wait for its carrier to drop (its device process
# is killed) and come back, and for traffic to flow again.
B_SCRIPT = (REACH.format(p=IPS["a"], code=10) + REACH.format(p=IPS["c"], code=11) + """
d0=$(cat /sys/class/net/eth0/carrier_down_count)
echo PEER-UP
n=0; until [ "$(cat /sys/class/net/eth0/carrier_down_count)" -gt "$d0" ]; do n=$((n+1)); [ $n -lt 600 ] || exit 20; sleep 0.1; done
echo CARRIER-WENT-DOWN
n=0; until [ "$(cat /sys/class/net/eth0/carrier)" = 1 ]; do n=$((n+1)); [ $n -lt 600 ] || exit 21; sleep 0.1; done
echo CARRIER-UP
""" + REACH.format(p=IPS["c"], code=22) + """
ping -c 3 -i 0.2 -W 2 {c} || exit 23
echo RECOVERED
sleep 600
""".format(c=IPS["c"]))

# c: pings b for ever, so traffic shows when the switch is back.
C_SCRIPT = REACH.format(p=IPS["b"], code=10) + "ping -i 0.3 -W 1 %s\n" % IPS["b"]


def test_device_and_qemu_killed(env):
    s = System(env, "failures", [
        guest("a", "sleep 600\n", ip=IPS["a"] + "/24"),
        guest("b", B_SCRIPT, ip=IPS["b"] + "/24"),
        guest("c", C_SCRIPT, ip=IPS["c"] + "/24"),
    ])
    s.wait_for(r"^PEER-UP", vm="b", timeout=180)

    # A QEMU dies: its VM is over, the others serve on.
    s.kill_child("qemu", "a")
    s.wait_for(r"^causeway: vm a: qemu killed by SIGKILL", timeout=30)

    # b's device process dies: restarted, re-attached, the guest recovers.
    old = s.kill_child("device", "b/nic0")
    s.wait_for(r"^causeway: b/nic0: device process killed by SIGKILL", timeout=30)
    s.wait_for(r"^CARRIER-WENT-DOWN", vm="b", timeout=60)
    s.wait_for(r"^CARRIER-UP", vm="b", timeout=60)
    s.wait_for(r"^RECOVERED", vm="b", timeout=90)
    check(s.pid_of("device", "b/nic0") != old, "b's device process was not replaced")

    st = s.stats()
    vms = {v["name"]: v for v in st["vms"]}
    check(vms["a"]["state"] == "exited" and "SIGKILL" in vms["a"].get("exit", ""),
          "a after its QEMU was killed: %r" % vms["a"])
    check(vms["a"]["nics"][0]["device"] == "stopped", "a's device still there: %r" % vms["a"])
    nb = vms["b"]["nics"][0]
    check(nb["device"] == "running" and nb["restarts"] == 1 and nb["link"] == "up",
          "b's NIC after the restart: %r" % nb)
    check(nb["rx_frames"] > 0, "b's new device has carried nothing: %r" % nb)
    check(vms["c"]["state"] == "running", "c: %r" % vms["c"])

    # The switch dies: restarted with its config, every device gets a fresh
    # port (too fast for a guest to see its carrier drop), traffic resumes.
    s.kill_child("switch", "sw0")
    _, t = s.wait_for(r"^causeway: switch sw0: killed by SIGKILL", timeout=30)
    s.wait_for(r"^causeway: switch sw0: restarting", timeout=30)
    s.wait_for(r"^64 bytes from %s" % IPS["b"], vm="c", timeout=60, after=t)
    st = s.stats()
    check(st["switches"][0]["state"] == "running" and st["switches"][0]["restarts"] == 1,
          "switch after its restart: %r" % st["switches"][0])
    ports = {p["name"]: p for p in st["switches"][0].get("ports", [])}
    check(ports.get("b/nic0", {}).get("rx_frames", 0) > 0,
          "the new switch carried nothing from b: %r" % ports)

    # SIGTERM: everything stops, the exit status says so, nothing is left.
    sock = s.control_socket()
    pids = list(s.children().values())
    check(len(pids) == 5, "expected 2 QEMUs, 2 devices and a switch, got %r" % s.children())
    os.kill(s.proc.pid, signal.SIGTERM)
    rc = s.wait_exit(timeout=60)
    check(rc == 128 + signal.SIGTERM, "causeway run exited %s after SIGTERM" % rc)
    check("stopping: on SIGTERM" in s.launcher_log(), "no stop message:\n" + s.launcher_log())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists("/proc/%d" % p) for p in pids):
        time.sleep(0.1)
    check(not any(os.path.exists("/proc/%d" % p) for p in pids), "children outlived the launcher")
    check(not os.path.exists(sock), "control socket left behind")
    check(not os.path.exists(sock[:-len(".sock")]), "runtime directory left behind")


def test_failed_guest_stops_the_system(env):
    s = System(env, "stop-on-failure", [
        guest("x", "sleep 1; exit 3\n", ip="10.99.0.1/24"),
        guest("y", "sleep 600\n", ip="10.99.0.2/24"),
    ], on_failure="stop")
    t0 = time.monotonic()
    rc = s.wait_exit(timeout=120)
    check(rc == 1, "causeway run exited %s, want 1" % rc)
    check(s.guest_exit("x") == 3, "x's guest status: %r" % s.guest_exit("x"))
    log = s.launcher_log()
    check("vm x: qemu exited with status 0, guest exit=3" in log, "x's end not reported:\n" + log)
    check("on_failure is \"stop\"" in log, "no stop reason:\n" + log)
    check("vm y: " in log, "y's end not reported:\n" + log)
    check(time.monotonic() - t0 < 90, "the system did not stop promptly")
