#!/usr/bin/env bash
# Installs what Causeway needs on Debian 12, and nothing when it is all there.
set -euo pipefail

PACKAGES=(
  gcc make pkg-config meson ninja-build            # build
  libjansson-dev libseccomp-dev libcmocka-dev      # libraries
  qemu-system-x86                                  # the VM runner
  dpdk dpdk-dev                                    # virtio-user driver, testpmd
  iperf3 busybox-static cpio kmod gzip xz-utils zstd  # guest image
  python3 procps iproute2                          # test harness
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to install packages: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
