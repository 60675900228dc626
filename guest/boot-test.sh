#!/bin/bash
# guest/boot-test.sh: boot the Causeway test guest in QEMU (TCG) and check
# the /init contract end to end. Needs no network: the one NIC used is a
# QEMU user-mode backend with restrict=on (fully isolated).
#
# usage: guest/boot-test.sh [options]
#   --dir DIR        image dir (default build/guest under the repo root)
#   --build          run guest/build.sh DIR first
#   --bench N        instead of the checks: boot N times, print the time from
#                    QEMU start to the script-start marker, and the median
#   --append ARGS    extra kernel command line words (both modes)
#   --nic-opts OPTS  extra virtio-net-pci properties, e.g. status=off,romfile=
#   --qemu-opts ARGS extra QEMU arguments (split on spaces), e.g.
#                    "-bios /usr/share/qemu/qboot.rom"
#   --timeout S      per-boot limit in seconds (default 120)
#   --keep           keep the console logs (printed path)
# Environment: QEMU (default qemu-system-x86_64), GUEST_CMDLINE (the base
# command line, default below).
#
# Exit status 0 only if every check passed; the last line is
# "boot-test: N passed, N failed".
set -euo pipefail

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$GUEST_DIR")
DIR=$REPO_DIR/build/guest
BUILD=0 BENCH=0 EXTRA='' TIMEOUT=120 KEEP=0 NIC_OPTS='' QEMU_OPTS=''
QEMU=${QEMU:-qemu-system-x86_64}
# The recommended default (see guest/README.md).
BASE_CMDLINE=${GUEST_CMDLINE:-console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check}

die() { printf 'boot-test: error: %s\n' "$*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
        --build) BUILD=1; shift ;;
        --bench) BENCH=${2:?--bench needs a count}; shift 2 ;;
        --append) EXTRA=${2?--append needs a value}; shift 2 ;;
        --qemu-opts) QEMU_OPTS=${2?--qemu-opts needs a value}; shift 2 ;;
        --nic-opts) NIC_OPTS=${2?--nic-opts needs a value}; shift 2 ;;
        --timeout) TIMEOUT=${2:?--timeout needs a value}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
case $BENCH in *[!0-9]*) die "--bench wants a number" ;; esac
case $TIMEOUT in ''|*[!0-9]*) die "--timeout wants seconds" ;; esac

if [ "$BUILD" = 1 ]; then
    "$GUEST_DIR/build.sh" "$DIR" || die "guest/build.sh failed"
fi
KERNEL=$DIR/bzImage INITRD=$DIR/initramfs.cpio.gz
if ! [ -s "$KERNEL" ] || ! [ -s "$INITRD" ]; then
    die "no image in $DIR (run guest/build.sh, or pass --build)"
fi
if ! command -v "$QEMU" >/dev/null; then
    # A fresh CI machine: install QEMU (root only), refreshing stale lists once.
    [ "$(id -u)" = 0 ] || die "$QEMU not found (apt-get install qemu-system-x86)"
    echo "boot-test: installing qemu-system-x86" >&2
    inst() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >&2; }
    inst || { apt-get update -qq >&2 && inst; } || die "cannot install qemu-system-x86"
    command -v "$QEMU" >/dev/null || die "$QEMU still not found"
fi

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/causeway-boot-test.XXXXXX")
if [ "$KEEP" = 0 ]; then trap 'rm -rf "$LOGDIR"' EXIT; fi

read -r -a QEMU_EXTRA <<<"$QEMU_OPTS"
# shellcheck disable=SC2054  # commas are QEMU option syntax
NIC=(-netdev user,id=n0,restrict=on -device "virtio-net-pci,netdev=n0${NIC_OPTS:+,$NIC_OPTS}")

# boot NAME CMDLINE-WORDS [QEMU ARGS...]: one VM to completion. Sets
# BOOT_RC (QEMU's status; 124 = killed at the time limit), BOOT_MARK_MS (ms
# from QEMU start to the script-start marker, empty if never seen),
# BOOT_TOTAL_MS, BOOT_LOG (console, CRs removed).
boot() {
    local name=$1 cmdline=$2 t0 now line
    shift 2
    BOOT_LOG=$LOGDIR/$name.log BOOT_MARK_MS='' BOOT_RC=''
    local full="$BASE_CMDLINE${EXTRA:+ $EXTRA} $cmdline"
    # x86 keeps 2048 bytes of command line (with its NUL) and silently cuts the rest.
    [ ${#full} -le 2047 ] || die "$name: kernel command line is ${#full} bytes (max 2047)"
    : >"$BOOT_LOG"
    t0=${EPOCHREALTIME/./}
    # Timestamp each console line as it arrives (bash's EPOCHREALTIME: µs).
    while IFS= read -r line; do
        line=${line%$'\r'}
        case $line in
            "QEMU-RC="*) BOOT_RC=${line#QEMU-RC=}; continue ;;
            *"CAUSEWAY-GUEST: script-start"*)
                now=${EPOCHREALTIME/./}
                [ -n "$BOOT_MARK_MS" ] || BOOT_MARK_MS=$(( (now - t0) / 1000 )) ;;
        esac
        printf '%s\n' "$line" >>"$BOOT_LOG"
    done < <(
        rc=0
        timeout -k 5 "$TIMEOUT" "$QEMU" -accel tcg,thread=multi -cpu max -m 256M -smp 1 \
            -nodefaults -no-user-config -display none -serial stdio -no-reboot \
            -kernel "$KERNEL" -initrd "$INITRD" "${QEMU_EXTRA[@]}" \
            -append "$full" "$@" </dev/null 2>&1 || rc=$?
        echo "QEMU-RC=$rc"
    )
    now=${EPOCHREALTIME/./}
    BOOT_TOTAL_MS=$(( (now - t0) / 1000 ))
}

b64() { base64 -w0; }
b64z() { gzip -9n | base64 -w0; }

if [ "$BENCH" -gt 0 ]; then
    times=()
    for i in $(seq 1 "$BENCH"); do
        boot "bench$i" "cw.ip=10.99.0.1/24 cw.mtu=9000 cw.script=$(echo 'exit 0' | b64)" "${NIC[@]}"
        if [ "$BOOT_RC" != 0 ] || [ -z "$BOOT_MARK_MS" ]; then
            die "bench boot $i failed (rc $BOOT_RC); log: $BOOT_LOG"
        fi
        printf 'boot %d: script-start after %d ms, QEMU exited after %d ms\n' \
            "$i" "$BOOT_MARK_MS" "$BOOT_TOTAL_MS"
        times+=("$BOOT_MARK_MS")
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 }
        END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }')
    echo "median QEMU start -> script-start: $median ms over $BENCH boots (cmdline: $BASE_CMDLINE${EXTRA:+ $EXTRA})"
    exit 0
fi

PASS=0 FAIL=0
check() { # description, then a command that must succeed
    local what=$1
    shift
    if "$@"; then
        PASS=$((PASS + 1)); echo "ok   $what"
    else
        FAIL=$((FAIL + 1)); echo "FAIL $what (log: $BOOT_LOG)"
    fi
}
has() { grep -qxF -- "$1" "$BOOT_LOG"; }
has_re() { grep -qE -- "$1" "$BOOT_LOG"; }
exited_alone() { [ "$BOOT_RC" = 0 ]; }

# 1. The full contract with a NIC. The script checks from inside and prints
#    "T ok NAME" / "T FAIL NAME"; the host side counts those.
GUEST_SCRIPT=$(cat <<'EOF'
t() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "T ok $n"; else echo "T FAIL $n"; fi; }
t ipv4-address  sh -c 'ip -4 addr show eth0 | grep -q "inet 10.99.0.1/24"'
t ipv6-address  sh -c 'ip -6 addr show eth0 | grep -q "inet6 fd00:99::1/64"'
t ipv6-no-dad   sh -c '! ip -6 addr show eth0 | grep -q tentative'
t mtu           test "$(cat /sys/class/net/eth0/mtu)" = 9000
t operstate-up  test "$(cat /sys/class/net/eth0/operstate)" = up
t hostname      test "$(hostname)" = bt-guest
t env           test "$CW_IP/$CW_MTU/$CW_IFACE/$CW_NAME" = 10.99.0.1/24/9000/eth0/bt-guest
t af-packet     grep -qi packet /proc/net/protocols
t applets       sh -c 'for a in ip ping ping6 sleep cat grep awk seq timeout base64 ifconfig nc modprobe rmmod insmod lsmod date dmesg; do command -v $a || exit 1; done'
t iperf3        iperf3 --version
t rmmod         sh -c 'rmmod virtio_net && ! test -e /sys/class/net/eth0'
t modprobe      sh -c 'modprobe virtio_net && test -e /sys/class/net/eth0'
t iperf3-lo     sh -c 'iperf3 -s -1 -D -B 127.0.0.1 && sleep 0.3 && iperf3 -c 127.0.0.1 -t 1 -l 64K'
exit 3
EOF
)
NCHECKS=$(grep -c '^t ' <<<"$GUEST_SCRIPT")
boot nic "cw.ip=10.99.0.1/24 cw.ip6=fd00:99::1/64 cw.mtu=9000 cw.name=bt-guest cw.scriptz=$(b64z <<<"$GUEST_SCRIPT")" "${NIC[@]}"
check "nic: QEMU exited by itself" exited_alone
check "nic: script-start marker (after ${BOOT_MARK_MS:-?} ms)" has "CAUSEWAY-GUEST: script-start"
check "nic: exit=3 marker" has "CAUSEWAY-GUEST: exit=3"
# shellcheck disable=SC2013  # check names are single words
for n in $(sed -n 's/^t \([a-z0-9-]*\) .*/\1/p' <<<"$GUEST_SCRIPT"); do
    check "nic: in guest: $n" has "T ok $n"
done
check "nic: all $NCHECKS in-guest checks reported" test "$(grep -c '^T ' "$BOOT_LOG")" = "$NCHECKS"
check "nic: no kernel oops/panic" sh -c "! grep -qE 'Oops|Kernel panic|BUG:' '$BOOT_LOG'"

# 2. No NIC, no script: says so, exit=0, powers off.
boot nonic "cw.ip=10.99.0.1/24"
check "nonic: QEMU exited by itself" exited_alone
check "nonic: no-eth0 notice" has_re '^CAUSEWAY-GUEST: no eth0'
check "nonic: script-start marker" has "CAUSEWAY-GUEST: script-start"
check "nonic: exit=0 marker" has "CAUSEWAY-GUEST: exit=0"

# 3. /init's own errors: exit=255 with a reason, and still powers off.
boot badb64 "cw.script=@@not-base64@@"
check "bad script: QEMU exited by itself" exited_alone
check "bad script: exit=255 with reason" has_re '^CAUSEWAY-GUEST: exit=255 reason=.*base64'
check "bad script: no script-start" sh -c "! grep -q 'script-start' '$BOOT_LOG'"

# 4. A truncated compressed script is caught, not half-run.
boot badgz "cw.scriptz=$(head -c 3000 /dev/zero | tr '\0' x | b64z | head -c 20)"
check "truncated scriptz: QEMU exited by itself" exited_alone
check "truncated scriptz: exit=255 with reason" has_re '^CAUSEWAY-GUEST: exit=255 reason=.*gzip'

# 5. cw.timeout ends a script that hangs.
boot hang "cw.timeout=2 cw.script=$(echo 'sleep 600' | b64)"
check "timeout: QEMU exited by itself" exited_alone
check "timeout: exit status of a killed script" has_re '^CAUSEWAY-GUEST: exit=(124|143)$'

echo "boot-test: $PASS passed, $FAIL failed"
[ "$KEEP" = 1 ] && echo "boot-test: logs in $LOGDIR"
[ "$FAIL" = 0 ]
