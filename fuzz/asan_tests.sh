#!/usr/bin/env bash
# Runs the whole test suite against a copy of the package whose C core (confd_ha._core) is
# built with AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   fuzz/asan_tests.sh [WORKDIR] [-- PYTEST ARGS...]
#
# The source tree is copied to WORKDIR (default /tmp/asan-build) and built there, so the
# extension in the source tree is never replaced.  gcc's ASan runtime is preloaded into the
# (uninstrumented) Python interpreter; leak detection is off because CPython keeps memory
# until exit on purpose (leaks are valgrind's job: fuzz/valgrind.sh).  Any ASan or UBSan
# report aborts the process, so it fails the test that triggered it.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/prelude.sh"
dir_option work /tmp/asan-build "$@"
shift "$skip"
python="${PYTHON:-python}"

case "$work" in
    /|"$root"|"$root"/*) echo "refusing to use $work as the work directory" >&2; exit 2 ;;
esac
rm -rf "$work"
mkdir -p "$work"
tar -C "$root" --exclude=./.git --exclude=./fuzz/build --exclude='*.so' --exclude='*.o' \
    --exclude=__pycache__ --exclude=./build --exclude='*.egg-info' -cf - . | tar -C "$work" -xf -

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
(cd "$work" && CC=gcc CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined" \
    "$python" build_ffi.py >build_ffi.log 2>&1) || { cat "$work/build_ffi.log"; exit 1; }
rm -f "$work"/confd_ha/_core.c "$work"/confd_ha/_core.o "$work"/csrc/*.o
so="$(ls "$work"/confd_ha/_core*.so)"
if ! nm -D "$so" | grep -q __asan_report; then
    echo "$so is not instrumented" >&2
    exit 1
fi
echo "instrumented core: $so"

asan_rt="$(gcc -print-file-name=libasan.so)"
export LD_PRELOAD="$asan_rt"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
ASAN_OPTIONS+=":detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONPATH="$work"
cd "$work"
"$python" -c 'import confd_ha._core as c, sys; print("testing", c.__file__); sys.exit(0)'
# The package's pytest plugin (fixtures) is found through its pytest11 entry point when the
# package is installed; in a bare source tree, load it by name.
plugin=()
if ! "$python" -c 'import importlib.metadata as m, sys
sys.exit(0 if any(e.name == "confd_ha" for e in m.entry_points(group="pytest11")) else 1)'; then
    plugin=(-p confd_ha.testing.pytest_plugin)
fi
"$python" -m pytest -q -p no:cacheprovider "${plugin[@]}" "$@" tests
