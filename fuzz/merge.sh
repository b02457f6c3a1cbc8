#!/usr/bin/env bash
# Folds the working corpora of fuzz/run.sh (fuzz/build/work/<harness>/) into the committed
# corpora (fuzz/corpus/<harness>/) with libFuzzer's -merge=1: an input is added only when it
# reaches coverage the corpus does not have yet, so the committed corpus stays small.
#
#   fuzz/merge.sh [HARNESS...]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/build"
harnesses=(decode reply status handshake roundtrip)
if [ "$#" -gt 0 ]; then
    harnesses=("$@")
fi
for h in "${harnesses[@]}"; do
    before=$(ls "$here/corpus/$h" | wc -l)
    "$build/fuzz_$h" -merge=1 -max_len=8192 \
        "$here/corpus/$h" "$build/work/$h" >"$build/logs/$h.merge.log" 2>&1
    after=$(ls "$here/corpus/$h" | wc -l)
    echo "$h: $before -> $after files, $(du -sb "$here/corpus/$h" | cut -f1) bytes"
done
