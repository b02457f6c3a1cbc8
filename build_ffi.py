"""cffi build script for confd_ha._core (the C protocol core in csrc/)."""

import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")


def _read(*parts):
    with open(os.path.join(HERE, *parts), encoding="utf-8") as f:
        return f.read()


def _package_version():
    match = re.search(r'__version__ = "([^"]+)"', _read("confd_ha", "_version.py"))
    if not match:
        raise RuntimeError("cannot find __version__ in confd_ha/_version.py")
    return match.group(1)


ffibuilder = FFI()
# The header is cdef-clean by design: read it verbatim (xattr's lib_build.py does the same).
ffibuilder.cdef(_read("csrc", "confd_ha_core.h"))
ffibuilder.set_source(
    "confd_ha._core",
    '#include <stdint.h>\n#include <stddef.h>\n#include "confd_ha_core.h"\n',
    sources=[os.path.join("csrc", "confd_ha_core.c")],
    include_dirs=[CSRC],
    define_macros=[("CHD_PKG_VERSION", '"%s"' % _package_version())],
    extra_compile_args=["-Wall", "-Wextra", "-O2", "-std=c99"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
