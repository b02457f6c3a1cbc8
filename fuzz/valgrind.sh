#!/usr/bin/env bash
# Runs the client and core tests under valgrind memcheck and summarises what it finds.
#
#   fuzz/valgrind.sh [OUTDIR] [-- TEST FILES OR PYTEST ARGS...]
#
# PYTHONMALLOC=malloc makes every Python object a malloc block memcheck can follow;
# fuzz/valgrind-python.supp hides CPython's own noise only.  Default tests:
# tests/test_client_*.py tests/test_core_*.py.  Child processes (emulators started by tests)
# run without valgrind.  The XML reports go to OUTDIR (default /tmp/valgrind-confd-ha) and are
# summarised by fuzz/valgrind_report.py, which fails when an error or a leak has a frame in
# csrc/confd_ha_core.c.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/prelude.sh"
dir_option out /tmp/valgrind-confd-ha "$@"
shift "$skip"
if [ "$#" -eq 0 ]; then
    set -- "$root"/tests/test_client_*.py "$root"/tests/test_core_*.py
fi
# The real interpreter, not a wrapper script (pyenv shims are shell scripts).
py="$("${PYTHON:-python}" -c 'import sys; print(sys.executable)')"

rm -rf "$out"
mkdir -p "$out"
cd "$root"
set +e
PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite \
    --num-callers=40 --child-silent-after-fork=yes --suppressions="$here/valgrind-python.supp" \
    --xml=yes --xml-file="$out/vg.%p.xml" --log-file="$out/vg.%p.log" \
    "$py" -m pytest -q -p no:cacheprovider "$@" >"$out/pytest.log" 2>&1
rc=$?
set -e
tail -3 "$out/pytest.log"
echo "pytest exit status under valgrind: $rc"
"$py" "$here/valgrind_report.py" "$out"/vg.*.xml
