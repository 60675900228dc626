#!/usr/bin/env bash
# Installs what is needed, builds Causeway and the guest image, then runs the
# demo systems: two VMs on an isolating switch running iperf3, then a
# cross-domain system where only a one-way UDP flow from low to high crosses.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[[ -f build/build.ninja ]] || meson setup build --buildtype=release >/dev/null
ninja -C build
bash guest/build.sh build/guest

echo "== demo 1: examples/two-vms.json (two VMs, one switch, iperf3)"
./build/causeway run examples/two-vms.json
echo "== demo 2: examples/cross-domain.json (one-way UDP low -> high; everything else dropped)"
./build/causeway run examples/cross-domain.json
