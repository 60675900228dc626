"""Scale: 8 VMs of 128 MiB start from one system file and every one pings
every other one through one switch (56 ordered pairs). The figures (time,
host memory beyond guest RAM) are measured by bench/scale.py on a release
build; this test checks that it works and that the counters agree."""
import time

from harness import check
from system_harness import System
from test_policy import guest, stop, switch_ports

N = 8


def ip(i):
    return "10.99.0.%d" % (i + 1)


# Reach each peer in turn (ping -W 1 gives up after a second while a peer is
# still booting), then hold the system up for the stats.
SCRIPT = """for p in {peers}; do
  n=0; until ping -c 1 -W 1 $p >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 150 ] || exit 10; done
done
echo PINGS-DONE
sleep 300
"""


def test_eight_vms_every_pair_pings(env):
    vms = []
    for i in range(N):
        peers = " ".join(ip(k) for k in range(N) if k != i)
        vms.append(guest("vm%d" % i, SCRIPT.format(peers=peers), ip=ip(i) + "/24",
                         mac="52:54:00:00:01:%02x" % i, memory="128M", timeout=400))
    t0 = time.monotonic()
    s = System(env, "scale", vms)
    for i in range(N):
        s.wait_for(r"^PINGS-DONE", vm="vm%d" % i, timeout=240)
    took = time.monotonic() - t0
    st = s.stats()
    stop(s)
    print("  %d VMs: all pairs pinged after %.1f s" % (N, took))

    check([v["name"] for v in st["vms"]] == ["vm%d" % i for i in range(N)]
          and all(v["state"] == "running" for v in st["vms"]), "vms: %r" % st["vms"])
    _, ports = switch_ports(st)
    check(sorted(ports) == sorted("vm%d/nic0" % i for i in range(N)), "ports: %r" % list(ports))
    for i in range(N):
        name = "vm%d" % i
        p = ports[name + "/nic0"]
        # N-1 echo requests and N-1 replies each way at least.
        check(p["rx_frames"] >= 2 * (N - 1) and p["tx_frames"] >= 2 * (N - 1),
              "%s: too few frames through the switch: %r" % (name, p))
        bad = {k: v for k, v in p["drops"].items() if v and k != "no_room"}
        check(not bad, "%s: drops %r" % (name, bad))
        nic = [v for v in st["vms"] if v["name"] == name][0]["nics"][0]
        check(p["rx_frames"] <= nic["tx_frames"], "%s: the switch got more than the device sent"
              % name)
