#!/usr/bin/env bash
# bench/run.sh [--quick]: the whole benchmark suite in one command.
#
# Installs what it needs, builds a release tree (build-bench: buildtype=release,
# no sanitizers), makes sure the guest image exists, runs every section and
# writes bench/results/RESULTS.md with one PNG chart per section. Raw data and
# logs go to bench/results/raw/ (gitignored). A section that fails is reported
# as such in RESULTS.md; the others still run.
#
#   --quick   smoke run while developing: 1 run per cell, short windows (< 5 min).
#             Its report goes to bench/results/raw/quick/, never over the
#             committed RESULTS.md.
#
# Sections: (1) engine_bench, the device engine alone, when bench/engine is
# built in this tree; (2) start-up time and device memory (bench/startup.py);
# (3) Causeway (link and switch) against DPDK's vhost forwarder, driven by
# testpmd's virtio-user (bench/dpdk_bench.py); (4) VM to VM: Causeway links and
# a Causeway switch (causeway run) against QEMU tap + bridge in a private
# network namespace, and loopback (bench/vm_bench.py).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
QUICK=0
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option '$a' (see --help)" >&2; exit 2 ;;
  esac
done

if [[ $(id -u) -ne 0 ]]; then
  # network namespaces, taps and bridges for the QEMU comparison need root
  echo "bench/run.sh: run as root" >&2
  exit 1
fi

# --- what it needs --------------------------------------------------------------------------
bash scripts/install-deps.sh
if ! dpkg-query -W -f='${Status}' python3-matplotlib 2>/dev/null | grep -q "install ok installed"; then
  echo "bench: installing python3-matplotlib (charts)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null
fi
# Debian's interpreter: it is the one python3-matplotlib installs into.
PY=/usr/bin/python3

# --- release build --------------------------------------------------------------------------
quiet() { # run a step silently, show its output only if it fails
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "bench/run.sh: failed: $*" >&2
    exit 1
  fi
  rm -f "$log"
}
# werror off here only: -O3 finds maybe-uninitialized warnings that the
# project's own debug and sanitizer builds (which keep -Werror) do not, and a
# benchmark must not stop on a warning. Warnings still print on failure.
BUILD=$ROOT/build-bench
BUILD_OPTS=(-Dbuildtype=release -Db_sanitize=none -Dwerror=false)
if [[ ! -f $BUILD/build.ninja ]]; then
  quiet meson setup "$BUILD" "${BUILD_OPTS[@]}"
else
  quiet meson configure "$BUILD" "${BUILD_OPTS[@]}"
fi
quiet ninja -C "$BUILD" causeway
ENGINE=""
# grep without -q reads all of ninja's output: with -q it exits at the first
# match, ninja dies of SIGPIPE and pipefail makes the test false.
if ninja -C "$BUILD" -t targets all 2>/dev/null | grep '^bench/engine_bench:' >/dev/null; then
  quiet ninja -C "$BUILD" bench/engine_bench
  ENGINE=$BUILD/bench/engine_bench
fi

# --- guest image (a no-op when its inputs are unchanged) -----------------------------------
quiet bash guest/build.sh

# --- runs -----------------------------------------------------------------------------------
if ((QUICK)); then
  RAW=$ROOT/bench/results/raw/quick
  OUT=$RAW
  RUNS=1
  ENGINE_ARGS=(--quick --runs 1)
  DPDK_ARGS=(--runs 1 --warmup 1 --duration 2 --idle 3)
  VM_ARGS=(--runs 1 --seconds 2 --pings 10)
else
  RAW=$ROOT/bench/results/raw
  OUT=$ROOT/bench/results
  RUNS=3
  ENGINE_ARGS=(--runs 3)
  # 5 runs: a two-process middle on one core swings between two speeds from
  # run to run (docs/PERFORMANCE.md, "context switches"); 3 runs leave the median to luck.
  DPDK_ARGS=(--runs 5 --warmup 2 --duration 5 --idle 3)
  VM_ARGS=(--runs 3 --seconds 5 --pings 20)
fi
rm -rf "$RAW/logs-dpdk" "$RAW/logs-vm"
rm -f "$RAW"/{machine.json,load.txt,engine.txt,startup.txt,dpdk.json,vm.json}
mkdir -p "$RAW"
$PY bench/report.py --machine "$RAW"

T0=$SECONDS
section() { # section NAME: note the load before it and say what runs
  echo "$1: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/load.txt"
  echo "== bench: $1 ($(date +%T), $((SECONDS - T0)) s in)"
}
failed=()

if [[ -n $ENGINE ]]; then
  section engine
  "$ENGINE" "${ENGINE_ARGS[@]}" >"$RAW/engine.txt" 2>&1 || failed+=(engine)
  grep '^RESULT' "$RAW/engine.txt" || true
else
  echo "== bench: engine_bench not built in this tree: section 1 skipped"
fi

section startup
$PY bench/startup.py --runs "$RUNS" --build "$BUILD" | tee "$RAW/startup.txt" || failed+=(startup)

section dpdk
$PY bench/dpdk_bench.py --build "$BUILD" --out "$RAW/dpdk.json" "${DPDK_ARGS[@]}" || failed+=(dpdk)

section vm
$PY bench/vm_bench.py --build "$BUILD" --out "$RAW/vm.json" "${VM_ARGS[@]}" || failed+=(vm)

section report
$PY bench/report.py "$RAW" "$OUT" $( ((QUICK)) && echo --quick )
echo "== bench: done in $((SECONDS - T0)) s; results in ${OUT#"$ROOT"/}/RESULTS.md"
if ((${#failed[@]})); then
  echo "bench: sections with failures: ${failed[*]} (see RESULTS.md and $RAW)" >&2
  exit 1
fi
