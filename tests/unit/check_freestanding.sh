#!/bin/sh
# The portable core may only depend on what a freestanding C environment
# provides (the compiler may call memcpy/memset/memmove/memcmp for struct
# copies). Any other undefined symbol is an OS or libc dependency.
set -eu
lib="$1"
bad=$(nm -u "$lib" | awk '{print $2}' | grep -vxE 'memcpy|memset|memmove|memcmp|_GLOBAL_OFFSET_TABLE_' || true)
if [ -n "$bad" ]; then
    echo "core depends on symbols a freestanding build does not have:" $bad
    exit 1
fi
echo "core is freestanding: $(nm -u "$lib" | awk '{print $2}' | sort -u | tr '\n' ' ')"
