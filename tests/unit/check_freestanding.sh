#!/bin/sh
# The portable core may only depend on what a freestanding C environment
# provides (the compiler may call memcpy/memset/memmove/memcmp for struct
# copies). Any other symbol the archive needs but does not define itself is an
# OS or libc dependency.
set -eu
lib="$1"
defined=$(nm --defined-only "$lib" | awk 'NF==3 {print $3}' | sort -u)
needed=$(nm -u "$lib" | awk '{print $2}' | sort -u)
external=$(printf '%s\n' "$needed" | grep -vxF "$defined" || true)
bad=$(printf '%s\n' "$external" | grep -vxE 'memcpy|memset|memmove|memcmp|_GLOBAL_OFFSET_TABLE_|' || true)
if [ -n "$bad" ]; then
    echo "core depends on symbols a freestanding build does not have:" $bad
    exit 1
fi
echo "core is freestanding; external symbols:" $external
