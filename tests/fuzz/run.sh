#!/usr/bin/env bash
# Coverage-guided fuzzing of every surface a hostile guest, frontend or peer
# controls: builds each target in tests/fuzz/ with clang and
# -fsanitize=fuzzer,address,undefined into build-fuzz/, then runs them one at
# a time (the machine is shared) for FUZZ_SECONDS each, starting from the
# committed seed corpus. New corpus entries go to build-fuzz/corpus/<target>/
# (not committed); crashing inputs to tests/fuzz/crashes/ (gitignored).
# Ends with one line: "fuzz: N passed, N failed".
#
# Usage: tests/fuzz/run.sh [TARGET...]     (default: all)
#   FUZZ_SECONDS=20   time per target
#   FUZZ_JOBS=1       libFuzzer workers per target
#   FUZZ_ARGS=...     extra libFuzzer flags
# Replay one crash: build-fuzz/fuzz_<target> tests/fuzz/crashes/<target>-crash-...
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/build-fuzz
CRASHES=$ROOT/tests/fuzz/crashes
SECONDS_PER=${FUZZ_SECONDS:-20}
JOBS=${FUZZ_JOBS:-1}

ALL=(virtq net offload ring vhost)
# fuzz_description only where the description loader exists (jansson).
if [[ -f src/system/description.c && -f tests/fuzz/fuzz_description.c ]]; then
  ALL+=(description)
fi
TARGETS=("$@")
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=("${ALL[@]}")

CLANG=${CLANG:-}
if [[ -z $CLANG ]]; then
  for c in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
    if command -v "$c" >/dev/null; then CLANG=$c; break; fi
  done
fi
if [[ -z $CLANG && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "fuzz: installing clang"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null 2>&1; }
  command -v clang >/dev/null && CLANG=clang
fi
if [[ -z $CLANG ]]; then
  echo "fuzz: clang not found (install clang, or set CLANG)"
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi

CFLAGS=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=undefined -I"$ROOT/src" -I"$ROOT/tests/fuzz"
        -D_FORTIFY_SOURCE=0 -Wall -Wextra -Wno-unused-parameter)
CORE=(src/core/virtq.c src/core/net.c src/core/offload.c src/port/ring.c)
HOST=(src/util/log.c src/gmem/guest_memory.c src/gmem/fault_guard.c src/vhost/backend.c
      src/vhost/messages.c)

sources() {
  case $1 in
    virtq) echo tests/fuzz/fuzz_virtq.c tests/fuzz/fuzz_mem.c src/core/virtq.c ;;
    net) echo tests/fuzz/fuzz_net.c tests/fuzz/fuzz_mem.c tests/fuzz/fuzz_port.c "${CORE[@]}" ;;
    offload) echo tests/fuzz/fuzz_offload.c src/core/offload.c ;;
    ring) echo tests/fuzz/fuzz_ring.c src/port/ring.c ;;
    vhost) echo tests/fuzz/fuzz_vhost.c tests/fuzz/fuzz_port.c "${CORE[@]}" "${HOST[@]}" ;;
    description) echo tests/fuzz/fuzz_description.c ;;
    *) return 1 ;;
  esac
}

# Largest input per target: enough for a whole guest memory image or a 64 KiB
# frame, small enough to keep executions fast.
max_len() {
  case $1 in
    virtq|net) echo 131072 ;;
    offload) echo 70000 ;;
    ring) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

build() {
  local t=$1 srcs extra=()
  srcs=$(sources "$t") || { echo "fuzz: unknown target $t"; return 1; }
  if [[ $t == description ]]; then
    # The loader and what it pulls in come from the project's own library
    # list; link jansson as the project does.
    srcs="$srcs $(description_sources)"
    extra=($(pkg-config --cflags --libs jansson 2>/dev/null || echo -ljansson))
  fi
  # shellcheck disable=SC2086
  "$CLANG" "${CFLAGS[@]}" $srcs "${extra[@]}" -o "$OUT/fuzz_$t" 2>"$OUT/build-$t.log"
}

description_sources() {
  # Exactly what the loader needs (a plain link has no static-library
  # pruning, so nothing with a main or unrelated dependencies).
  echo src/system/description.c src/system/json_fields.c src/system/json_locate.c \
       src/system/ip_prefix.c src/system/policy_parse.c src/cli/options.c \
       src/gmem/guest_memory.c src/gmem/fault_guard.c src/util/log.c
}

mkdir -p "$OUT" "$CRASHES"
passed=0 failed=0
for t in "${TARGETS[@]}"; do
  if ! build "$t"; then
    echo "fuzz: $t: build failed"; cat "$OUT/build-$t.log"
    failed=$((failed + 1)); continue
  fi
  work=$OUT/corpus/$t
  mkdir -p "$work"
  before=$(find "$CRASHES" -maxdepth 1 -name "$t-*" | wc -l)
  # Seeds are read from tests/fuzz/corpus/<target> but never written: new
  # inputs land in the first (work) directory.
  "$OUT/fuzz_$t" "$work" "tests/fuzz/corpus/$t" \
      -max_total_time="$SECONDS_PER" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
      $( ((JOBS > 1)) && echo "-jobs=$JOBS -workers=$JOBS" ) -print_final_stats=1 \
      -artifact_prefix="$CRASHES/$t-" ${FUZZ_ARGS:-} >"$OUT/run-$t.log" 2>&1
  rc=$?
  after=$(find "$CRASHES" -maxdepth 1 -name "$t-*" | wc -l)
  execs=$(grep -E 'stat::number_of_executed_units' "$OUT/run-$t.log" | awk '{s+=$2} END{print s+0}')
  cov=$(grep -oE 'cov: [0-9]+' "$OUT/run-$t.log" | tail -1)
  if [[ $rc -eq 0 && $after -eq $before ]]; then
    echo "fuzz: $t: ok ($execs runs, ${cov:-cov: ?}, ${SECONDS_PER}s)"
    passed=$((passed + 1))
  else
    echo "fuzz: $t: FAILED (exit $rc; new crash files: $((after - before)); log: $OUT/run-$t.log)"
    grep -E 'ERROR|fuzz check failed|SUMMARY|runtime error' "$OUT/run-$t.log" | head -5
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
