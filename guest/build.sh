#!/bin/bash
# guest/build.sh [OUTDIR]: build the Causeway test guest.
#
# Output (OUTDIR defaults to build/guest under the repository root):
#   OUTDIR/bzImage             Debian's cloud kernel (the vmlinuz, unchanged)
#   OUTDIR/initramfs.cpio.gz   busybox + iperf3 + the virtio-net modules + guest/init
#
# Everything comes from Debian packages fetched with `apt-get download` into
# guest/cache/ (gitignored), never from the host's own files, so the guest is
# the same on every machine that sees the same Debian archive. A second run
# downloads nothing (each deb is checked against the archive's SHA256), and a
# run whose inputs are unchanged rebuilds nothing (OUTDIR/.stamp).
#
# Environment: CAUSEWAY_GUEST_CACHE overrides the cache dir.
set -euo pipefail

readonly STAMP_FORMAT=1   # bump when the image layout changes without an input change
readonly ARCH_TRIPLET=x86_64-linux-gnu
# Modules /init loads, in order; each pulls its dependency closure from modules.dep.
# af_packet is optional: Debian's cloud kernel builds it in (CONFIG_PACKET=y).
readonly REQUIRED_MODULES="virtio_pci virtio_net"
readonly OPTIONAL_MODULES="af_packet"
# Applets the test scripts rely on; the build fails if busybox lacks one.
readonly REQUIRED_APPLETS="sh ash ip ping ping6 sleep cat grep awk sed seq timeout base64
    ifconfig nc modprobe rmmod insmod lsmod date dmesg mount umount sync poweroff reboot
    hostname echo printf test mkdir rm ls ps kill sysctl tee head tail wc cut tr sort
    uname usleep"

log() { printf 'guest/build.sh: %s\n' "$*" >&2; }
die() { printf 'guest/build.sh: error: %s\n' "$*" >&2; exit 1; }

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$GUEST_DIR")
OUTDIR=${1:-$REPO_DIR/build/guest}
CACHE=${CAUSEWAY_GUEST_CACHE:-$GUEST_DIR/cache}
INIT_SRC=$GUEST_DIR/init

[ -f "$INIT_SRC" ] || die "missing $INIT_SRC"
[ "$(uname -m)" = x86_64 ] || die "this builder only makes x86_64 guests (host is $(uname -m))"
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    die "needs a Debian host (apt-get, dpkg not found)"
fi
[ "$(dpkg --print-architecture)" = amd64 ] \
    || die "apt must fetch amd64 packages (dpkg architecture is $(dpkg --print-architecture))"

# --- tools --------------------------------------------------------------------
# Install only what is missing; retry after `apt-get update` because a fresh
# machine may have no (or stale) package lists.
APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" = 1 ] && return 0
    [ "$(id -u)" = 0 ] || die "apt-get update needs root"
    log "running apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
}

ensure_tools() {
    local missing=() tool pkg
    for pair in "$@"; do
        tool=${pair%%:*} pkg=${pair#*:}
        command -v "$tool" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing packages ${missing[*]} (run as root to install them)"
    log "installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2; then
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 \
            || die "apt-get install ${missing[*]} failed"
    fi
}

ensure_tools dpkg-deb:dpkg cpio:cpio gzip:gzip depmod:kmod sha256sum:coreutils \
    awk:mawk find:findutils
mkdir -p "$CACHE" "$OUTDIR"
CACHE=$(cd "$CACHE" && pwd)
OUTDIR=$(cd "$OUTDIR" && pwd)
# Several builds may share the cache (parallel test suites): one at a time.
if command -v flock >/dev/null; then
    exec 9>"$CACHE/.lock"
    flock 9 || die "cannot lock $CACHE/.lock"
fi

# --- resolve package names and versions ---------------------------------------
KERNEL_META=linux-image-cloud-amd64

# One apt-cache call (each one rebuilds apt's cache in memory: ~0.6 s here)
# gives both answers:
# - the versioned kernel package the metapackage points at (e.g.
#   linux-image-6.1.0-56-cloud-amd64): that name changes with every ABI bump;
# - the runtime libraries of iperf3: the transitive Depends/PreDepends
#   closure, following only library packages (lib*). The rest (debconf,
#   adduser, ...) serves maintainer scripts, which never run here. Which .so
#   files are really needed is decided later by the dynamic loader itself.
resolve_all() {
    local deps
    deps=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances iperf3 "$KERNEL_META" 2>/dev/null) || return 1
    KERNEL_PKG=$(awk -v meta="$KERNEL_META" '
        /^[^ ]/ { cur = $1; next }
        cur == meta && $1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }' <<<"$deps")
    [ -n "$KERNEL_PKG" ] || return 1
    LIB_PKGS=$(awk '
        /^[^ ]/ { cur = $1; next }
        ($1 == "Depends:" || $1 == "PreDepends:") && $2 !~ /^</ {
            d = $2; sub(/:any$/, "", d); edges[cur] = edges[cur] " " d
        }
        END {
            queue[1] = "iperf3"; head = 1; tail = 1
            while (head <= tail) {
                n = split(edges[queue[head++]], ds, " ")
                for (i = 1; i <= n; i++)
                    if (ds[i] ~ /^lib/ && !(ds[i] in seen)) {
                        seen[ds[i]] = 1; queue[++tail] = ds[i]; print ds[i]
                    }
            }
        }' <<<"$deps")
    grep -qx libiperf0 <<<"$LIB_PKGS" && grep -qx libc6 <<<"$LIB_PKGS" || return 1
    PKGS="$KERNEL_PKG busybox-static iperf3 $(tr '\n' ' ' <<<"$LIB_PKGS")"
}

if ! resolve_all; then
    apt_update_once
    resolve_all || die "cannot resolve $KERNEL_META / iperf3 dependencies with apt-cache (is the Debian archive in sources.list?)"
fi

# --- download (cached) --------------------------------------------------------
DEB_DIR=$CACHE/debs
mkdir -p "$DEB_DIR"
# apt's download runs as user _apt; let it write without the "unsandboxed" warning.
chmod 0777 "$DEB_DIR" 2>/dev/null || true

# "file sha256" lines for the candidate versions (no network needed). Run in
# an empty dir: apt-get prints nothing for a file already in the current dir.
print_uris() {
    local d rc=0 out
    d=$(mktemp -d)
    # shellcheck disable=SC2086
    out=$(cd "$d" && apt-get download --print-uris $PKGS 2>/dev/null) || rc=1
    rmdir "$d"
    [ $rc = 0 ] || return 1
    awk '{ h = $4; sub(/^SHA256:/, "", h); print $2, h }' <<<"$out"
}

# Fill DEB_FILE[pkg] from the print-uris list; the file name starts with "pkg_".
declare -A DEB_FILE DEB_SHA
index_debs() {
    local uris name sha p found
    uris=$(print_uris) || return 1
    for p in $PKGS; do
        found=0
        while read -r name sha; do
            case $name in "${p}_"*) DEB_FILE[$p]=$name DEB_SHA[$p]=$sha found=1; break ;; esac
        done <<<"$uris"
        [ $found = 1 ] || return 1
    done
}

deb_ok() { # pkg
    local f=$DEB_DIR/${DEB_FILE[$1]}
    [ -f "$f" ] && [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "${DEB_SHA[$1]}" ]
}

download_missing() {
    local need=() p
    for p in $PKGS; do deb_ok "$p" || need+=("$p"); done
    [ ${#need[@]} -eq 0 ] && return 0
    log "downloading ${need[*]}"
    (cd "$DEB_DIR" && apt-get download -q "${need[@]}" >&2) || return 1
    for p in "${need[@]}"; do deb_ok "$p" || return 1; done
}

if ! index_debs || ! download_missing; then
    # Stale package lists (the archive moved on) or a missing index: refresh once.
    apt_update_once
    resolve_all || die "cannot resolve packages after apt-get update"
    unset DEB_FILE DEB_SHA; declare -A DEB_FILE DEB_SHA
    index_debs || die "apt-get download --print-uris gave no URI for some of: $PKGS"
    download_missing || die "download failed or SHA256 mismatch for some of: $PKGS (cache: $DEB_DIR)"
fi

# Drop debs (and their extractions) that are no longer part of the set, so the
# cache does not grow with every kernel update.
keep=" "
for p in $PKGS; do keep="$keep${DEB_FILE[$p]} "; done
for f in "$DEB_DIR"/*.deb; do
    [ -e "$f" ] || continue
    case $keep in *" $(basename "$f") "*) ;; *) log "pruning $(basename "$f")"; rm -f "$f"
        rm -rf "$CACHE/x/$(basename "$f" .deb)" ;; esac
done

# --- stamp: skip everything if nothing changed ---------------------------------
STAMP=$( {
    echo "format $STAMP_FORMAT"
    for p in $PKGS; do echo "$p ${DEB_FILE[$p]} ${DEB_SHA[$p]}"; done
    sha256sum <"$INIT_SRC"
    sha256sum <"${BASH_SOURCE[0]}"
} | sha256sum | cut -d' ' -f1)

print_sizes() {
    local k=$OUTDIR/bzImage i=$OUTDIR/initramfs.cpio.gz
    printf 'guest: %s\n' "$OUTDIR"
    printf '  bzImage            %8d KiB  (%s)\n' $(( $(stat -c %s "$k") / 1024 )) "$KERNEL_PKG"
    printf '  initramfs.cpio.gz  %8d KiB  (%d KiB unpacked)\n' $(( $(stat -c %s "$i") / 1024 )) \
        $(( $(gzip -dc "$i" | wc -c) / 1024 ))
}

mkdir -p "$OUTDIR"
if [ -f "$OUTDIR/.stamp" ] && [ "$(cat "$OUTDIR/.stamp")" = "$STAMP" ] \
    && [ -s "$OUTDIR/bzImage" ] && [ -s "$OUTDIR/initramfs.cpio.gz" ]; then
    log "up to date"
    print_sizes
    exit 0
fi

# --- extract (cached per deb) --------------------------------------------------
declare -A X   # pkg -> extracted tree
for p in $PKGS; do
    d=$CACHE/x/$(basename "${DEB_FILE[$p]}" .deb)
    if [ ! -f "$d/.complete" ]; then
        rm -rf "$d" "$d.tmp"
        mkdir -p "$d.tmp"
        dpkg-deb -x "$DEB_DIR/${DEB_FILE[$p]}" "$d.tmp" || die "dpkg-deb -x ${DEB_FILE[$p]} failed"
        touch "$d.tmp/.complete"
        mv "$d.tmp" "$d"
    fi
    X[$p]=$d
done

KX=${X[$KERNEL_PKG]}
shopt -s nullglob
vmlinuz=("$KX"/boot/vmlinuz-*)
shopt -u nullglob
[ ${#vmlinuz[@]} -eq 1 ] || die "expected one boot/vmlinuz-* in $KERNEL_PKG, found ${#vmlinuz[@]}"
KVER=${vmlinuz[0]##*/vmlinuz-}
KMOD_ROOT=
for base in "$KX" "$KX/usr"; do
    [ -d "$base/lib/modules/$KVER" ] && KMOD_ROOT=$base && break
done
[ -n "$KMOD_ROOT" ] || die "no lib/modules/$KVER in $KERNEL_PKG"
KMOD_DIR=$KMOD_ROOT/lib/modules/$KVER
# The deb ships no modules.dep (its postinst runs depmod); make one once.
if [ ! -f "$KMOD_DIR/modules.dep" ]; then
    depmod -b "$KMOD_ROOT" "$KVER" || die "depmod on the extracted $KERNEL_PKG failed"
fi

# --- stage the initramfs tree --------------------------------------------------
STAGE=$(mktemp -d "$OUTDIR/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,root,var,lib/$ARCH_TRIPLET,lib64}
install -d -m 1777 "$STAGE/tmp"
ln -s ../tmp "$STAGE/var/tmp"

# busybox and one symlink per applet (all in /bin: PATH has /bin first).
BB_SRC=${X[busybox-static]}/bin/busybox
[ -x "$BB_SRC" ] || die "busybox-static has no bin/busybox"
install -m 0755 "$BB_SRC" "$STAGE/bin/busybox"
APPLETS=$("$STAGE/bin/busybox" --list) || die "cannot run the downloaded busybox to list its applets"
for a in $APPLETS; do
    case $a in busybox|*/*|'') continue ;; esac
    ln -s busybox "$STAGE/bin/$a"
done
for a in $REQUIRED_APPLETS; do
    [ -L "$STAGE/bin/$a" ] || die "busybox lacks the applet '$a'"
done

# iperf3 and exactly the shared objects the dynamic loader resolves for it,
# taken from the downloaded library packages (never from the host).
install -m 0755 "${X[iperf3]}/usr/bin/iperf3" "$STAGE/usr/bin/iperf3"
LIBPATH=
for p in $LIB_PKGS; do
    for sub in lib/$ARCH_TRIPLET usr/lib/$ARCH_TRIPLET; do
        [ -d "${X[$p]}/$sub" ] && LIBPATH=${LIBPATH:+$LIBPATH:}${X[$p]}/$sub
    done
done
LOADER=
for p in $LIB_PKGS; do
    for cand in "${X[$p]}/lib/$ARCH_TRIPLET/ld-linux-x86-64.so.2" \
                "${X[$p]}/usr/lib/$ARCH_TRIPLET/ld-linux-x86-64.so.2"; do
        [ -e "$cand" ] && LOADER=$cand && break 2
    done
done
[ -n "$LOADER" ] || die "no ld-linux-x86-64.so.2 in the library packages ($LIB_PKGS)"
# --list prints "soname => /path (addr)"; anything resolved outside the cache
# would be a host file sneaking in, so refuse it.
LDLIST=$("$LOADER" --inhibit-cache --library-path "$LIBPATH" --list "$STAGE/usr/bin/iperf3") \
    || die "the loader cannot resolve iperf3's libraries: $LDLIST"
NLIBS=0
while read -r soname arrow path _; do
    [ "$arrow" = "=>" ] || continue
    case $soname in */*) continue ;; esac   # the loader itself, staged below
    case $path in
        "$CACHE"/*) ;;
        *) die "iperf3 needs $soname, which no downloaded package provides (resolved to '$path')" ;;
    esac
    cp -L "$path" "$STAGE/lib/$ARCH_TRIPLET/$soname"
    NLIBS=$((NLIBS + 1))
done <<<"$LDLIST"
cp -L "$LOADER" "$STAGE/lib/$ARCH_TRIPLET/ld-linux-x86-64.so.2"
ln -s ../lib/$ARCH_TRIPLET/ld-linux-x86-64.so.2 "$STAGE/lib64/ld-linux-x86-64.so.2"
chmod 0755 "$STAGE/lib/$ARCH_TRIPLET"/*
# Prove the staged tree alone is enough: run iperf3 with only the staged libs.
"$STAGE/lib64/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$STAGE/lib/$ARCH_TRIPLET" \
    "$STAGE/usr/bin/iperf3" --version >/dev/null \
    || die "staged iperf3 does not run with the staged libraries"

# Kernel modules: dependency closure from modules.dep, decompressed so busybox
# modprobe needs no decompressor, then depmod on the staged tree so modprobe
# loads them in order (virtio_ring before virtio, ...).
normalize() { echo "${1//-/_}"; }
MODLIST=$(awk -v want="$REQUIRED_MODULES $OPTIONAL_MODULES" '
    function name(path,   n) { n = path; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n)
                              gsub(/-/, "_", n); return n }
    function visit(m,   i, n, parts) {
        if (m in done) return
        done[m] = 1
        n = split(deps[m], parts, " ")
        for (i = 1; i <= n; i++) visit(name(parts[i]))
        print path[m]
    }
    {
        p = $1; sub(/:$/, "", p)
        m = name(p); path[m] = p
        d = ""; for (i = 2; i <= NF; i++) d = d " " $i
        deps[m] = d
    }
    END {
        n = split(want, w, " ")
        for (i = 1; i <= n; i++) if (w[i] in path) visit(w[i]); else print "MISSING " w[i]
    }' "$KMOD_DIR/modules.dep")
LOAD_MODULES=
for m in $REQUIRED_MODULES $OPTIONAL_MODULES; do
    if grep -qx "MISSING $m" <<<"$MODLIST"; then
        if grep -qE "/$m\.ko" "$KMOD_DIR/modules.builtin" 2>/dev/null; then
            log "$m is built into $KVER (nothing to load)"
        elif [[ " $REQUIRED_MODULES " == *" $m "* ]]; then
            die "module $m is neither in modules.dep nor built into $KVER"
        else
            log "optional module $m not available in $KVER"
        fi
    else
        LOAD_MODULES="$LOAD_MODULES $m"
    fi
done
SMOD=$STAGE/lib/modules/$KVER
mkdir -p "$SMOD"
NMODS=0
while read -r rel; do
    case $rel in MISSING\ *|'') continue ;; esac
    src=$KMOD_DIR/$rel dst=$SMOD/${rel%.ko*}.ko
    mkdir -p "$(dirname "$dst")"
    case $rel in
        *.ko) cp "$src" "$dst" ;;
        *.ko.xz) ensure_tools xz:xz-utils; xz -dc "$src" >"$dst" ;;
        *.ko.zst) ensure_tools zstd:zstd; zstd -qdc "$src" >"$dst" ;;
        *.ko.gz) gzip -dc "$src" >"$dst" ;;
        *) die "unexpected module file $rel" ;;
    esac
    echo "${rel%.ko*}.ko" >>"$SMOD/modules.order"
    NMODS=$((NMODS + 1))
done <<<"$MODLIST"
for f in modules.builtin modules.builtin.modinfo; do
    [ -f "$KMOD_DIR/$f" ] && cp "$KMOD_DIR/$f" "$SMOD/$f"
done
depmod -b "$STAGE" "$KVER" || die "depmod -b on the staged tree failed"
# busybox modprobe reads only the text files; the .bin indexes are dead weight.
rm -f "$SMOD"/*.bin
for m in $LOAD_MODULES; do
    grep -q "/$m\.ko:" "$SMOD/modules.dep" || die "staged modules.dep lacks $m"
done
echo "$LOAD_MODULES" | tr ' ' '\n' | sed '/^$/d' >"$STAGE/etc/causeway-modules"

# /etc basics: root user (some applets look it up), hosts for localhost.
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$STAGE/etc/passwd"
printf 'root:x:0:\n' >"$STAGE/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$STAGE/etc/hosts"
echo "$KVER" >"$STAGE/etc/causeway-kernel"

install -m 0755 "$INIT_SRC" "$STAGE/init"

# The kernel opens /dev/console for /init before anything is mounted, so the
# node must be in the archive itself (devtmpfs comes later). mknod needs root;
# without it /init re-opens the console after mounting devtmpfs.
if [ "$(id -u)" = 0 ]; then
    mknod -m 0600 "$STAGE/dev/console" c 5 1
    mknod -m 0666 "$STAGE/dev/null" c 1 3
else
    log "not root: no /dev/console node in the archive (init will reopen it after devtmpfs)"
fi

# --- pack ----------------------------------------------------------------------
# Sorted names, fixed owner and mtime: the same inputs give the same bytes.
find "$STAGE" -exec touch -h -d @0 {} +
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort \
    | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n >"$OUTDIR/.initramfs.tmp" \
    || die "packing the initramfs failed"
cp "${vmlinuz[0]}" "$OUTDIR/.bzImage.tmp"
mv -f "$OUTDIR/.bzImage.tmp" "$OUTDIR/bzImage"
mv -f "$OUTDIR/.initramfs.tmp" "$OUTDIR/initramfs.cpio.gz"
echo "$STAMP" >"$OUTDIR/.stamp"

log "built for $KVER: $NMODS modules (load:$LOAD_MODULES), $NLIBS libraries for iperf3"
print_sizes
