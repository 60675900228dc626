"""`causeway run`: a system of three VMs on one switch, its counters through
`causeway stats`, and a malformed file refused before anything starts."""
import glob
import os
import subprocess

from harness import CAUSEWAY, check
from system_harness import System, guest

IPS = {"a": "10.99.0.1", "b": "10.99.0.2", "c": "10.99.0.3"}

# Reach both peers, ping each, then stay up long enough for the test to read
# the counters of a running system.
PING_PEERS = """
for p in {peers}; do
  n=0; until ping -c 1 -W 1 $p >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 90 ] || exit 10; sleep 0.5; done
done
for p in {peers}; do ping -c 3 -i 0.2 -W 2 $p || exit 11; done
echo PINGS-OK
sleep 12
"""


def test_three_vms_ping_each_other(env):
    vms = []
    for name, ip in IPS.items():
        peers = " ".join(v for k, v in IPS.items() if k != name)
        vms.append(guest(name, PING_PEERS.format(peers=peers), ip=ip + "/24"))
    s = System(env, "three", vms)
    sock = s.control_socket()
    check(sock.endswith(".sock") and os.path.exists(sock), "control socket %r missing" % sock)
    for name in IPS:
        s.wait_for(r"^PINGS-OK", vm=name, timeout=180)

    st = s.stats()
    check(st["op"] == "stats" and st["system"] == "three", "stats reply: %r" % st)
    check([v["name"] for v in st["vms"]] == ["a", "b", "c"], "vms in stats: %r" % st["vms"])
    for v in st["vms"]:
        check(v["state"] == "running", "%s not running: %r" % (v["name"], v))
        nic = v["nics"][0]
        check(nic["device"] == "running" and nic["link"] == "up", "%s nic: %r" % (v["name"], nic))
        # 2 peers x (1 probe + 3 pings) requests and as many replies, plus ARP.
        check(nic["tx_frames"] >= 8 and nic["rx_frames"] >= 8,
              "%s: too few frames counted: %r" % (v["name"], nic))
        check(nic["tx_bytes"] >= 8 * 98 and nic["rx_bytes"] >= 8 * 98,
              "%s: too few bytes counted: %r" % (v["name"], nic))
        check(nic["kicks"][1] > 0 and nic["interrupts"][0] > 0,
              "%s: no notifications counted: %r" % (v["name"], nic))
        check(nic["drops"]["guest_fault"] == 0, "%s: guest faults: %r" % (v["name"], nic))
    sw = st["switches"]
    check(len(sw) == 1 and sw[0]["name"] == "sw0" and sw[0]["state"] == "running",
          "switches: %r" % sw)
    ports = {p["name"]: p for p in sw[0].get("ports", [])}
    check(sorted(ports) == ["a/nic0", "b/nic0", "c/nic0"], "switch ports: %r" % sw[0])
    for name in IPS:
        p = ports[name + "/nic0"]
        check(p["rx_frames"] >= 8 and p["tx_frames"] >= 8, "switch port %s: %r" % (name, p))
        # What the switch got from a port is what that VM's device sent.
        dev = [v for v in st["vms"] if v["name"] == name][0]["nics"][0]
        check(p["rx_frames"] <= dev["tx_frames"], "switch received more than %s sent" % name)

    table = s.stats(args=())
    for needle in ("a/nic0", "b/nic0", "c/nic0", "switch sw0"):
        check(needle in table, "stats table lacks %r:\n%s" % (needle, table))

    s.expect_success(timeout=120)
    for name in IPS:
        check(" 0% packet loss" in s.console(name), "%s lost pings" % name)
        check("device %s/nic0: link up" % name in s.console(name), "%s: no device log" % name)
    check(s.switch_log(), "no switch log lines")
    check(not os.path.exists(sock), "control socket left behind after exit")


BAD_FILES = {
    # name: (content, line, a substring of the message)
    "syntax": ('{"vms": [\n  {"name": "a",,}\n]}\n', 2, None),
    "unknown-key": ('{"vms": [],\n "switches": [],\n "colour": "blue"}\n', 3, "colour"),
}


def runtime_files(names):
    found = glob.glob("/run/causeway/*") + glob.glob("/tmp/causeway-*/*")
    return [f for f in found if os.path.basename(f).split(".")[0] in names]


def test_malformed_file_starts_nothing(env):
    for name, (text, line, what) in BAD_FILES.items():
        path = os.path.join(env.tmp, name + ".json")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([CAUSEWAY, "run", path], capture_output=True, text=True, timeout=30)
        check(r.returncode == 2, "%s: exit %d, want 2 (%s)" % (name, r.returncode, r.stderr))
        first = r.stderr.strip().splitlines()[0] if r.stderr.strip() else ""
        check(first.startswith("%s:%d:" % (path, line)),
              "%s: error %r is not FILE:%d:COL" % (name, first, line))
        check(what is None or what in first, "%s: error %r does not name %r" % (name, first, what))
        check("control socket" not in r.stderr + r.stdout and not r.stdout,
              "%s: something started: %r" % (name, r.stdout + r.stderr))
    r = subprocess.run([CAUSEWAY, "run", os.path.join(env.tmp, "missing.json")],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and "missing.json" in r.stderr, "missing file: %r" % (r,))
    left = runtime_files(list(BAD_FILES) + ["missing"])
    check(not left, "runtime files created: %r" % left)
