"""The switch's anti-spoofing and cross-domain policy with real guests, run
through `causeway run SYSTEM.json`, checked three ways: what the guests saw
(their kernels' counters and neighbour tables), the switch's counters from
`causeway stats` (JSON and table, read while the system runs) and the
switch's drop log lines.

(Every pair of three same-domain VMs pinging each other is
test_system_basic.test_three_vms_ping_each_other.)"""
import os
import re
import signal
import time

from harness import BASE_CMDLINE, check
from system_harness import System
from system_harness import guest as _guest

MAC = {"a": "52:54:00:00:00:01", "b": "52:54:00:00:00:02",
       "high1": "52:54:00:00:00:01", "low1": "52:54:00:00:00:02", "high2": "52:54:00:00:00:03"}

# c PROTO FIELD: a counter of /proc/net/snmp (header line, then values).
SNMP = r"""c() { awk -v p="$1:" -v f="$2" '$1==p{if(!k){for(i=2;i<=NF;i++)if($i==f)k=i}else{print $k;exit}}' /proc/net/snmp; }
"""
# syslogd -R sends each logger message as one UDP datagram (busybox nc has no -u).
WAIT_SYSLOG = """n=0; until [ -S /dev/log ]; do n=$((n+1)); [ $n -lt 50 ] || exit 9; usleep 100000; done
"""


def guest(*args, **kw):
    """A guest that does not panic when the host is too busy for the kernel's
    boot-time timer check ("IO-APIC + timer doesn't work!", seen under TCG on
    a loaded 2-core host)."""
    vm = _guest(*args, **kw)
    vm["cmdline"] = vm["cmdline"].replace(BASE_CMDLINE, BASE_CMDLINE + " no_timer_check", 1)
    return vm


def stop(s):
    """End a system whose guests are still sleeping: SIGTERM, clean exit."""
    os.kill(s.proc.pid, signal.SIGTERM)
    rc = s.wait_exit(timeout=60)
    check(rc == 128 + signal.SIGTERM, "%s: causeway run exited %s after SIGTERM (log %s)"
          % (s.name, rc, s.log_path))


def switch_ports(st, sw="sw0"):
    sws = [x for x in st["switches"] if x["name"] == sw]
    check(len(sws) == 1 and sws[0]["state"] == "running" and "ports" in sws[0],
          "switch %s in stats: %r" % (sw, st["switches"]))
    return sws[0], {p["name"]: p for p in sws[0]["ports"]}


def nic_stats(st, vm):
    return [v for v in st["vms"] if v["name"] == vm][0]["nics"][0]


def table_row(table, name):
    """The numbers of a switch port's row in the `causeway stats` table, and its drops text."""
    m = re.search(r"^\s+\d+ %s\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$" % re.escape(name), table,
                  re.M)
    check(m, "stats table has no switch port row %r:\n%s" % (name, table))
    return [int(x) for x in m.groups()[:4]], m.group(5)


def result(s, vm, tag):
    """The key=value pairs of the guest's `TAG k=v ...` line."""
    m, _ = s.wait_for(r"^%s (.*)$" % tag, vm=vm, timeout=5)
    return dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)


# ---------------------------------------------------------------------------
# Anti-spoofing: a guest sends with an IPv4 source its NIC does not list, then
# with another source MAC, each both in an IP packet (static neighbour: the
# echo request is the first frame) and in ARP (no neighbour: the ARP request
# carries the forged address). All are dropped before the policy, inside one
# domain; back on its own MAC the guest reaches its peer again.

SPOOFER = """n=0; until ping -c 1 -W 1 10.99.0.2 >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 60 ] || exit 10; sleep 0.5; done
echo REACHED
ip addr add 10.99.0.77/24 dev eth0
arp -i eth0 -s 10.99.0.2 @B@ || exit 8
ping -c 2 -W 1 -I 10.99.0.77 10.99.0.2 >/dev/null 2>&1 && echo LEAK ip-icmp
arp -i eth0 -d 10.99.0.2
sleep 1
ping -c 2 -W 1 -I 10.99.0.77 10.99.0.2 >/dev/null 2>&1 && echo LEAK ip-arp
ip addr del 10.99.0.77/24 dev eth0
ip neigh flush dev eth0 >/dev/null
sleep 1
ip link set eth0 address 52:54:00:00:00:99 || exit 11
ping -c 2 -W 1 10.99.0.2 >/dev/null 2>&1 && echo LEAK mac-arp
sleep 1
arp -i eth0 -s 10.99.0.2 @B@ || exit 8
ping -c 2 -W 1 10.99.0.2 >/dev/null 2>&1 && echo LEAK mac-icmp
arp -i eth0 -d 10.99.0.2
ip link set eth0 address @A@ || exit 12
sleep 1
ping -c 3 -W 3 10.99.0.2 || exit 13
echo SPOOF-DONE
sleep 150
""".replace("@A@", MAC["a"]).replace("@B@", MAC["b"])

# b's neighbour table every half second: a forged ARP request that got
# through would show there (10.99.0.77, or 10.99.0.1 at the forged MAC), and
# so would a forged echo request (b resolves 10.99.0.77 to answer it). b must
# not probe a's address itself (it would after 5 s of using a's entry): a
# probe would answer a's ARP requests before a sent them.
WATCHER = """echo 120 >/proc/sys/net/ipv4/neigh/eth0/delay_first_probe_time || exit 9
while :; do echo "NEIGH $(ip neigh show | tr '\\n' ';')"; usleep 500000; done
"""


def test_spoofed_mac_and_ip_dropped(env):
    s = System(env, "spoof", [
        guest("a", SPOOFER, ip="10.99.0.1/24", mac=MAC["a"], timeout=200),
        guest("b", WATCHER, ip="10.99.0.2/24", mac=MAC["b"], timeout=200),
    ])
    s.wait_for(r"^REACHED", vm="a", timeout=120)
    _, t_done = s.wait_for(r"^SPOOF-DONE", vm="a", timeout=90)
    # One more look at b's table after a is done.
    while not [t for t, x in s.lines if t > t_done + 0.6 and x.startswith("b| NEIGH ")]:
        check(time.monotonic() - s.t0 < t_done + 10, "b stopped printing its neighbours")
        time.sleep(0.2)

    st = s.stats()
    table = s.stats(args=())
    stop(s)

    check("LEAK" not in s.console("a"), "a forged frames that reached b:\n" + s.console("a"))
    neigh = [x for x in s.console("b").splitlines() if x.startswith("NEIGH ")]
    check(len(neigh) > 10, "b printed too few neighbour tables: %r" % neigh)
    for x in neigh:
        check("10.99.0.77" not in x and "52:54:00:00:00:99" not in x,
              "a forged frame reached b: %r" % x)
    check("10.99.0.1 dev eth0 lladdr %s" % MAC["a"] in neigh[-1],
          "b does not know a at its own MAC at the end: %r" % neigh[-1])

    _, ports = switch_ports(st)
    da, db = ports["a/nic0"]["drops"], ports["b/nic0"]["drops"]
    # Per phase: 2 echo requests, >= 1 ARP request.
    check(da["spoofed_ip"] >= 3 and da["spoofed_mac"] >= 3, "a's spoofing drops: %r" % da)
    check(da["policy"] == 0 and da["bad_frame"] == 0, "a: drops other than spoofing: %r" % da)
    check(all(v == 0 for v in db.values()), "b's own frames dropped: %r" % db)

    # The drop log names each forged frame (phases are a second apart, well
    # under the switch's 5 lines per second).
    log = s.switch_log()
    a, b = MAC["a"], MAC["b"]
    expect = {
        "IP in IPv4": r"dropped \(spoofed_ip\) from a/nic0: %s > %s ipv4 10\.99\.0\.77 > "
                      r"10\.99\.0\.2 icmp type 8" % (a, b),
        "IP in ARP": r"dropped \(spoofed_ip\) from a/nic0: %s > ff:ff:ff:ff:ff:ff arp "
                     r"10\.99\.0\.77 > 10\.99\.0\.2" % a,
        "MAC in ARP": r"dropped \(spoofed_mac\) from a/nic0: 52:54:00:00:00:99 > "
                      r"ff:ff:ff:ff:ff:ff arp 10\.99\.0\.1 > 10\.99\.0\.2",
        "MAC in IPv4": r"dropped \(spoofed_mac\) from a/nic0: 52:54:00:00:00:99 > %s ipv4 "
                       r"10\.99\.0\.1 > 10\.99\.0\.2 icmp type 8" % b,
    }
    for what, rx in expect.items():
        check(re.search(rx, log), "no switch log line for the forged %s:\n%s" % (what, log))

    nums, drops = table_row(table, "a/nic0")
    check(re.search(r"spoofed_mac=\d+", drops) and re.search(r"spoofed_ip=\d+", drops),
          "stats table: a/nic0 drops %r" % drops)
    check(nums[0] >= ports["a/nic0"]["rx_frames"], "table a/nic0 %r vs JSON %r"
          % (nums, ports["a/nic0"]))
    _, drops_b = table_row(table, "b/nic0")
    check(drops_b.strip() == "-", "stats table: b/nic0 drops %r" % drops_b)


# ---------------------------------------------------------------------------
# Cross-domain: high1, high2 (domain high) and low1 (domain low) on one
# switch; one rule lets UDP from low to high port 5001 through, a second one
# denies ICMP from high to the broadcast address (the default would too: it is
# there to count high1's broadcast pings on their own). Everything else that
# crosses is left to the default deny:
#   low1 -> high1: UDP to 5001 (allowed: static neighbour, 10 datagrams), the
#                  same datagrams to 5002, ping, TCP to port 22
#   low1 -> high2: ping without a neighbour entry (ARP request)
#   high1 -> low1: ping, TCP to 22, UDP to 5001 (static neighbour)
#   high2 -> low1: ping without a neighbour entry (ARP request)
#   high1 -> all:  3 broadcast pings: high2 answers, low1 must not see them
# low1 is alone in its domain, so it must receive nothing at all.

LOW1 = (SNMP + """echo 0 >/proc/sys/net/ipv4/icmp_echo_ignore_broadcasts
arp -i eth0 -s 10.99.0.1 @HIGH1@ || exit 8
syslogd -R 10.99.0.1:5001 -R 10.99.0.1:5002
""" + WAIT_SYSLOG + """sleep 3
ping -c 2 -W 1 10.99.0.1 >/dev/null 2>&1 && echo LEAK ping &
nc -w 2 10.99.0.1 22 </dev/null >/dev/null 2>&1 && echo LEAK tcp &
ping -c 1 -W 2 10.99.0.3 >/dev/null 2>&1 && echo LEAK arp &
i=0; while [ $i -lt 10 ]; do i=$((i+1)); logger -t low1 "datagram $i"; usleep 300000; done
wait
echo "LOW-SENT udp=$i"
sleep 8
echo "LOW-RESULT rx_packets=$(cat /sys/class/net/eth0/statistics/rx_packets) echo_in=$(c Icmp InEchos) udp_in=$(( $(c Udp InDatagrams) + $(c Udp NoPorts) )) tcp_in=$(c Tcp InSegs)"
sleep 150
""").replace("@HIGH1@", MAC["high1"])

HIGH1 = (SNMP + """arp -i eth0 -s 10.99.0.2 @LOW1@ || exit 8
syslogd -R 10.99.0.2:5001
""" + WAIT_SYSLOG + """ping -c 2 -W 1 10.99.0.2 >/dev/null 2>&1 && echo LEAK ping &
nc -w 2 10.99.0.2 22 </dev/null >/dev/null 2>&1 && echo LEAK tcp &
for i in 1 2 3; do logger -t high1 "to low1 $i"; done
n=0; until ping -c 1 -W 1 10.99.0.3 >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 60 ] || exit 10; sleep 0.5; done
sleep 1
echo BCAST
ping -c 3 -W 2 10.99.0.255
wait
sleep 12
echo "HIGH1-RESULT udp_in=$(( $(c Udp InDatagrams) + $(c Udp NoPorts) )) tcp_in=$(c Tcp InSegs) echo_replies_out=$(c Icmp OutEchoReps)"
sleep 150
""").replace("@LOW1@", MAC["low1"])

HIGH2 = SNMP + """echo 0 >/proc/sys/net/ipv4/icmp_echo_ignore_broadcasts
ping -c 1 -W 2 10.99.0.2 >/dev/null 2>&1 && echo LEAK arp
sleep 14
echo "HIGH2-RESULT echo_replies_out=$(c Icmp OutEchoReps) neigh_low1=[$(ip neigh show | grep '^10.99.0.2 ' | tr ' ' _)]"
sleep 150
"""

XPOLICY = {"rules": [
    {"from": "low", "to": "high", "proto": "udp", "dst_port": 5001, "action": "allow"},
    {"from": "high", "to": "low", "proto": "icmp", "dst": "10.99.0.255", "action": "deny"},
]}


def rule_lines(path):
    """Line of each policy rule's '{' in the written file (what stats report)."""
    with open(path) as f:
        lines = f.read().split("\n")
    start = [i for i, x in enumerate(lines) if '"rules"' in x][0]
    return [i + 1 for i, x in enumerate(lines) if i > start and x.strip() == "{"]


def test_cross_domain_one_way_flow_and_broadcast(env):
    s = System(env, "xdomain", [
        guest("high1", HIGH1, ip="10.99.0.1/24", mac=MAC["high1"], domain="high", timeout=200),
        guest("low1", LOW1, ip="10.99.0.2/24", mac=MAC["low1"], domain="low", timeout=200),
        guest("high2", HIGH2, ip="10.99.0.3/24", mac=MAC["high2"], domain="high", timeout=200),
    ], policy=XPOLICY)
    for vm, tag in (("low1", "LOW-RESULT"), ("high1", "HIGH1-RESULT"), ("high2", "HIGH2-RESULT")):
        s.wait_for(r"^%s " % tag, vm=vm, timeout=150)
    st = s.stats()
    table = s.stats(args=())
    stop(s)

    for vm in ("high1", "low1", "high2"):
        check("LEAK" not in s.console(vm), "%s: a denied flow got through:\n%s"
              % (vm, s.console(vm)))
    sent = int(result(s, "low1", "LOW-SENT")["udp"])
    check(sent == 10, "low1 sent %d datagrams" % sent)

    # What the guests saw. low1: nothing at all, not even a broadcast.
    low = result(s, "low1", "LOW-RESULT")
    check(low == {"rx_packets": "0", "echo_in": "0", "udp_in": "0", "tcp_in": "0"},
          "low1 received frames from domain high: %r" % low)
    # high1: some of the datagrams to 5001 (those sent once it was up), none
    # to 5002 (that would make more than were sent to 5001); no TCP segment,
    # no echo request from low1 (it would have answered).
    h1 = result(s, "high1", "HIGH1-RESULT")
    check(1 <= int(h1["udp_in"]) <= sent, "high1 got %s UDP datagrams of %d sent to 5001"
          % (h1["udp_in"], sent))
    check(h1["tcp_in"] == "0" and h1["echo_replies_out"] == "0",
          "TCP or ICMP from low1 reached high1: %r" % h1)
    # high2 answered high1's broadcast pings (and its unicast probe) and never
    # learnt low1's MAC: neither low1's ARP request nor an answer to its own
    # got through.
    h2 = result(s, "high2", "HIGH2-RESULT")
    check(int(h2["echo_replies_out"]) >= 4, "high2 answered too few pings: %r" % h2)
    check("lladdr" not in h2["neigh_low1"], "high2 learnt low1's MAC: %r" % h2)
    bcast = s.console("high1").split("BCAST", 1)[-1]
    for seq in range(3):
        check(re.search(r"from 10\.99\.0\.3: seq=%d " % seq, bcast),
              "high1's broadcast ping %d got no answer from high2:\n%s" % (seq, bcast))

    # What the switch counted.
    sw, ports = switch_ports(st)
    check(ports["low1/nic0"]["domain"] == "low" and ports["high2/nic0"]["domain"] == "high",
          "port domains: %r" % ports)
    check(ports["low1/nic0"]["tx_frames"] == 0, "the switch delivered frames to low1: %r"
          % ports["low1/nic0"])
    check(nic_stats(st, "low1")["rx_frames"] == 0, "low1's device received frames: %r"
          % nic_stats(st, "low1"))
    rules = sw["rules"]
    lines = rule_lines(s.path)
    check([r["line"] for r in rules] == lines, "rule lines %r, file has them at %r"
          % (rules, lines))
    # Each datagram to 5001 is one decision (unicast to a known port).
    check(rules[0]["matched"] == sent, "allow rule matched %d, %d sent" % (rules[0]["matched"],
                                                                          sent))
    # Each broadcast is decided once for domain low (and never for high).
    check(rules[1]["matched"] == 3, "broadcast deny rule matched %d, want 3" % rules[1]["matched"])
    # At least: 10 UDP to 5002, 2 pings, 1 SYN, 1 ARP from low1; 2 pings,
    # 1 SYN, 3 UDP from high1; 1 ARP from high2.
    check(sw["default_deny"] >= 21, "default_deny %d < 21" % sw["default_deny"])
    pol = {n: p["drops"]["policy"] for n, p in ports.items()}
    check(pol["low1/nic0"] >= 14 and pol["high1/nic0"] >= 2 + 1 + 3 + 3
          and pol["high2/nic0"] >= 1, "policy drops per ingress port: %r" % pol)
    check(ports["high1/nic0"]["tx_frames"] >= sent, "high1 port tx %r" % ports["high1/nic0"])
    for n, p in ports.items():
        bad = {k: v for k, v in p["drops"].items() if k != "policy" and v}
        check(not bad, "%s: drops other than policy: %r" % (n, bad))
    log = s.switch_log()
    check(re.search(r"dropped \(policy\) from low1/nic0 to high1/nic0: .* \(no rule allows it\)",
                    log), "no default-deny log line for low1:\n" + log)

    # The table says the same (counters read a moment later can only grow).
    for r in rules:
        m = re.search(r"rule at line %d: (\d+) matched" % r["line"], table)
        check(m and int(m.group(1)) == r["matched"], "table rule line %d:\n%s" % (r["line"], table))
    m = re.search(r"default deny: (\d+)", table)
    check(m and int(m.group(1)) >= sw["default_deny"], "table default deny:\n" + table)
    nums, drops = table_row(table, "low1/nic0")
    check(nums[2] == 0 and re.search(r"policy=\d+", drops), "table low1/nic0: %r %r"
          % (nums, drops))
