#!/usr/bin/env bash
# The whole test suite: unit tests (cmocka, under ASan+UBSan), the freestanding
# core check, and end-to-end tests with real guests in QEMU, real iperf3 and
# DPDK's virtio-user driver. Ends with one line: N passed, N failed, N skipped.
# Usage: tests/run.sh [-k FILTER]...   (filters select e2e tests by name)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${CAUSEWAY_TEST_BUILD:-$ROOT/build-test}

bash scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

if [[ ! -f $BUILD/build.ninja ]]; then
  meson setup "$BUILD" -Db_sanitize=address,undefined -Db_lundef=false >/dev/null ||
    { echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$BUILD" >"$BUILD/ninja.log" 2>&1; then
  cat "$BUILD/ninja.log"
  echo "0 passed, 1 failed"
  exit 1
fi
bash guest/build.sh "$ROOT/build/guest" || { echo "guest image build failed"; echo "0 passed, 1 failed"; exit 1; }

# Sanitizer findings end the process with an error, so a test sees them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

passed=0 failed=0 skipped=0

echo "== unit tests"
meson test -C "$BUILD" --suite unit --print-errorlogs --num-processes 2 | tee "$BUILD/unit.log"
read -r u_ok u_fail u_skip < <(awk '/^Ok:/{o=$2} /^Fail:/{f=$2} /^Skipped:/{s=$2} /^Timeout:/{t=$2} END{print o+0, f+t+0, s+0}' "$BUILD/unit.log")
if ! grep -q '^Ok:' "$BUILD/unit.log"; then u_fail=$((u_fail + 1)); fi
passed=$((passed + u_ok)); failed=$((failed + u_fail)); skipped=$((skipped + u_skip))

echo "== end-to-end tests"
CAUSEWAY_BUILD=$BUILD python3 tests/e2e/run.py "$@" | tee "$BUILD/e2e.log"
line=$(grep -E '^e2e: [0-9]+ passed' "$BUILD/e2e.log" | tail -1)
if [[ -z $line ]]; then
  failed=$((failed + 1))
else
  read -r e_ok e_fail e_skip < <(sed -E 's/e2e: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\1 \2 \3/' <<<"$line")
  passed=$((passed + e_ok)); failed=$((failed + e_fail)); skipped=$((skipped + e_skip))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
