#!/usr/bin/env bash
# Runs the libFuzzer harnesses built by fuzz/build.sh.
#
#   fuzz/run.sh [LIMIT] [HARNESS...]
#
# LIMIT is seconds per harness ("60" or "60s", default 60) or a number of executions
# ("10000000r" or "runs=10000000").  Each harness first replays fuzz/regressions/<harness>/,
# then fuzzes starting from fuzz/corpus/<harness>/ plus its working corpus
# fuzz/build/work/<harness>/ (new inputs go there; fuzz/merge.sh folds them into the committed
# corpus).  Crashes land in fuzz/build/artifacts/<harness>/, logs in fuzz/build/logs/.
# JOBS=2 runs two harnesses at a time.  Exit status: non-zero if any harness found something.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/build"
limit="${1:-60}"
shift || true
harnesses=(decode reply status handshake roundtrip)
if [ "$#" -gt 0 ]; then
    harnesses=("$@")
fi
case "$limit" in
    *r) stop="-runs=${limit%r}" ;;
    runs=*) stop="-runs=${limit#runs=}" ;;
    *s) stop="-max_total_time=${limit%s}" ;;
    *) stop="-max_total_time=$limit" ;;
esac
jobs="${JOBS:-1}"

run_one() {
    local h="$1" bin="$build/fuzz_$1"
    local work="$build/work/$h" art="$build/artifacts/$h/" log="$build/logs/$h.log"
    if [ ! -x "$bin" ]; then
        echo "$h: $bin missing, run fuzz/build.sh first" >&2
        return 2
    fi
    mkdir -p "$work" "$art" "$build/logs"
    if compgen -G "$here/regressions/$h/*" >/dev/null; then
        "$bin" "$here/regressions/$h/"* >"$build/logs/$h.regressions.log" 2>&1 || {
            echo "$h: a regression input fails, see $build/logs/$h.regressions.log" >&2
            return 1
        }
    fi
    # -max_len: status replies of a few hundred nodes and long binaries need room;
    # -use_value_profile: comparisons against tag bytes and lengths guide the mutations.
    local rc=0
    "$bin" "$work" "$here/corpus/$h" $stop -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -use_value_profile=1 -print_final_stats=1 -artifact_prefix="$art" >"$log" 2>&1 || rc=$?
    echo "$h: rc=$rc $(grep -E '^#[0-9]+.*(DONE|pulse)' "$log" | tail -1)"
    return $rc
}

rc=0
pids=()
names=()
for h in "${harnesses[@]}"; do
    if [ "$jobs" -le 1 ]; then
        run_one "$h" || rc=1
    else
        run_one "$h" &
        pids+=($!)
        names+=("$h")
        if [ "${#pids[@]}" -ge "$jobs" ]; then
            wait "${pids[0]}" || rc=1
            pids=("${pids[@]:1}")
            names=("${names[@]:1}")
        fi
    fi
done
for p in "${pids[@]}"; do
    wait "$p" || rc=1
done
exit $rc
