#!/usr/bin/env bash
# Installs what is needed, builds Causeway and the guest image, then runs the
# demo: two VMs joined by a Causeway link ping each other and run iperf3.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[[ -f build/build.ninja ]] || meson setup build --buildtype=release >/dev/null
ninja -C build
bash guest/build.sh build/guest

link=$(mktemp -u /tmp/causeway-demo-XXXXXX.sock)
b64() { base64 -w0; }
server=$(b64 <<'S'
iperf3 -s -D
nc -l -p 9000 >/dev/null
S
)
client=$(b64 <<'S'
until ping -c 1 -W 1 10.99.0.1 >/dev/null 2>&1; do sleep 1; done
ping -c 4 10.99.0.1
iperf3 -c 10.99.0.1 -t 5 -f m
iperf3 -c 10.99.0.1 -t 5 -f m -R
echo done | nc 10.99.0.1 9000
S
)
vm() { # name ip mac script
  ./build/causeway vm --name "$1" --kernel build/guest/bzImage --initrd build/guest/initramfs.cpio.gz \
    --cmdline "console=ttyS0 quiet cw.name=$1 cw.ip=$2/24 cw.script=$4" --net "link=$link,mac=$3" 2>&1 |
    sed -u "s/^/$1| /"
}
vm alpha 10.99.0.1 52:54:00:00:00:01 "$server" &
a=$!
vm beta 10.99.0.2 52:54:00:00:00:02 "$client"
wait $a
