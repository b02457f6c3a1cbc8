#!/usr/bin/env bash
# Source-level coverage of csrc/confd_ha_core.c reached by the committed corpora: builds every
# harness with clang's coverage instrumentation (no sanitizers), runs each corpus once
# (libFuzzer -runs=0) and prints llvm-cov's report for the core, per harness and merged.
#
#   fuzz/coverage.sh            # output in fuzz/build/coverage/
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="${FUZZ_BUILD_DIR:-$here/build}/coverage"
harnesses=(decode reply status handshake roundtrip)
flags="-g -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -I$root/csrc"

mkdir -p "$out"
rm -f "$out"/*.profraw "$out"/*.profdata
objects=()
for h in "${harnesses[@]}"; do
    clang $flags -DCHD_PKG_VERSION='"fuzz"' "$here/fuzz_$h.c" "$root/csrc/confd_ha_core.c" -lm \
        -o "$out/cov_$h"
    LLVM_PROFILE_FILE="$out/$h.profraw" "$out/cov_$h" -runs=0 "$here/corpus/$h" \
        >"$out/$h.log" 2>&1
    llvm-profdata merge -sparse "$out/$h.profraw" -o "$out/$h.profdata"
    echo "== $h"
    llvm-cov report "$out/cov_$h" -instr-profile="$out/$h.profdata" \
        "$root/csrc/confd_ha_core.c" | tail -1
    objects+=(-object "$out/cov_$h")
done
llvm-profdata merge -sparse "$out"/*.profraw -o "$out/all.profdata"
echo "== all corpora"
llvm-cov report "${objects[@]:1}" -instr-profile="$out/all.profdata" \
    "$root/csrc/confd_ha_core.c" | tail -1
llvm-cov show "${objects[@]:1}" -instr-profile="$out/all.profdata" \
    "$root/csrc/confd_ha_core.c" -show-line-counts-or-regions >"$out/confd_ha_core.c.txt"
echo "annotated source: $out/confd_ha_core.c.txt"
