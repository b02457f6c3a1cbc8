#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ into fuzz/build/ (git-ignored).
#
#   fuzz/build.sh              # every harness
#   fuzz/build.sh decode ...   # only those named
#
# Needs clang with the libFuzzer runtime (Debian: apt-get install clang libclang-rt-14-dev).
# CC overrides the compiler; EXTRA_CFLAGS is appended (e.g. -DNDEBUG, -O2); FUZZ_BUILD_DIR
# replaces fuzz/build/ as the output directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cc="${CC:-clang}"
out="${FUZZ_BUILD_DIR:-$here/build}"
harnesses=(decode reply status handshake roundtrip)
if [ "$#" -gt 0 ]; then
    harnesses=("$@")
fi

# -fno-sanitize-recover: a UBSan report must stop the run like an ASan one, so libFuzzer
# keeps the input.  The core is compiled with the flags build_ffi.py uses (-std=c99).
sanitize="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
common="-g -O1 -fno-omit-frame-pointer -Wall -Wextra -I$root/csrc ${EXTRA_CFLAGS:-}"

mkdir -p "$out"
"$cc" $common $sanitize -std=c99 -DCHD_PKG_VERSION='"fuzz"' \
    -c "$root/csrc/confd_ha_core.c" -o "$out/confd_ha_core.o"
for h in "${harnesses[@]}"; do
    "$cc" $common $sanitize -c "$here/fuzz_$h.c" -o "$out/fuzz_$h.o"
    "$cc" $sanitize "$out/fuzz_$h.o" "$out/confd_ha_core.o" -lm -o "$out/fuzz_$h"
    echo "built $out/fuzz_$h"
done
