"""Two real Linux guests joined by a Causeway link: ping, iperf3 TCP and UDP
both ways, across MTUs, offload sets and both guest-memory strategies."""
import re

from harness import check, parse_iperf, two_vm_nets

SERVER_IP, CLIENT_IP = "10.99.0.1", "10.99.0.2"

SERVER = """
iperf3 -s -D
nc -l -p 9000 >/dev/null
echo server-done
"""

# The client drives everything; `set -e` makes any failed step fail the test.
CLIENT = """
set -e
# iperf3's server re-opens its listening socket between tests: a test that
# starts in that moment is refused. Retry, like a user would.
ip3() {{ n=0; until iperf3 "$@"; do n=$((n+1)); [ $n -lt 5 ] || return 11; sleep 1; done; }}
ip link show eth0
n=0; until ping -c 1 -W 1 {srv} >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 90 ] || exit 10; sleep 1; done
ping -c 5 -i 0.2 {srv}
ping -c 2 -s {big} {srv}
ip3 -c {srv} -t {t} -f m
ip3 -c {srv} -t {t} -f m -R
ip3 -c {srv} -u -b {udp} -t {t} -f m
ip3 -c {srv} -u -b {udp} -t {t} -f m -R
echo done | nc {srv} 9000
"""


def run_pair(env, mtu=1500, opts_a="", opts_b="", gmem="persistent", seconds=3, udp="50M"):
    mtu_opt = ",mtu=%d" % mtu
    na, nb = two_vm_nets(env, opts_a + mtu_opt, opts_b + mtu_opt)
    srv = env.vm("srv", SERVER, ip=SERVER_IP + "/24", mtu=mtu, nets=na, gmem=gmem)
    big = min(mtu, 9000) - 28 if mtu > 1500 else 1400
    cli = env.vm("cli", CLIENT.format(srv=SERVER_IP, t=seconds, udp=udp, big=big),
                 ip=CLIENT_IP + "/24", mtu=mtu, nets=nb, gmem=gmem)
    cli.expect_success(timeout=300)
    srv.expect_success(timeout=60)
    out = cli.output()
    check(re.search(r"eth0: .*mtu %d" % mtu, out), "client eth0 is not at MTU %d" % mtu)
    check(" 0% packet loss" in out, "ping lost packets")
    rates = parse_iperf(out)
    check(len(rates) == 4, "expected 4 iperf3 receiver summaries, got %r" % rates)
    check(all(r > 1.0 for r in rates), "an iperf3 run moved almost nothing: %r Mbit/s" % rates)
    for v in (srv, cli):
        m = re.search(r"device \S+: stats link=\S+ tx_frames=(\d+) .*rx_frames=(\d+)", v.output())
        check(m, "%s: no device stats line at exit" % v.name)
        check(int(m.group(1)) > 100 and int(m.group(2)) > 100,
              "%s: device moved too few frames: %s" % (v.name, m.group(0)))
    return srv, cli, rates


def test_mtu1500_offloads_on(env):
    run_pair(env, mtu=1500)


def test_mtu1500_offloads_off_map_per_access(env):
    srv, cli, _ = run_pair(env, mtu=1500, opts_a=",offloads=off", opts_b=",offloads=off",
                           gmem="map-per-access", seconds=2, udp="10M")
    m = re.search(r"gmem=map-per-access gmem_maps=(\d+) gmem_unmaps=(\d+)", cli.output())
    check(m and int(m.group(1)) > 1000 and m.group(1) == m.group(2),
          "map-per-access did not map and unmap per access: %s" % (m and m.group(0)))


def test_mtu9000_offloads_off(env):
    run_pair(env, mtu=9000, opts_a=",offloads=off", opts_b=",offloads=off")


def test_mtu65520_offloads_on(env):
    run_pair(env, mtu=65520)


def test_mixed_offloads_software_segmentation(env):
    # The server's guest sends TSO frames; the client's guest cannot take
    # them, so the client's device segments and checksums in software.
    srv, cli, _ = run_pair(env, mtu=1500, opts_a="", opts_b=",offloads=off")
    m = re.search(r"sw_csum=(\d+) sw_segments=(\d+)", cli.output())
    check(m and int(m.group(2)) > 0,
          "client device did no software segmentation: %s" % (m and m.group(0)))
