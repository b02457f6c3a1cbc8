"""Summarises the XML files of a valgrind memcheck run (fuzz/valgrind.sh).

    python fuzz/valgrind_report.py VG-XML-FILE...

Each error memcheck reported after the suppressions is attributed to the code that made it:
the innermost frame outside valgrind's allocator and libc -- ``confd_ha core`` (csrc/
confd_ha_core.c), ``cffi glue`` (the rest of the generated confd_ha._core module), ``cffi
backend`` (_cffi_backend, third party), ``CPython`` (with its lib-dynload modules), ``OpenSSL``
or ``other``. Separately, an error with a
frame in csrc/confd_ha_core.c anywhere on its stack counts against the core. Prints counts per
kind and the bytes lost; exits 1 when anything is attributable to the core.
"""

from __future__ import annotations

import collections
import sys
import xml.etree.ElementTree as ET

OWNERS = ("confd_ha core", "cffi glue", "cffi backend", "CPython", "OpenSSL", "other")


def owner(frame) -> str | None:
    obj, fn, fname = frame
    if "vgpreload" in obj or "/libc.so" in obj:
        return None
    if fname == "confd_ha_core.c":
        return "confd_ha core"
    if "/confd_ha/_core" in obj:
        return "cffi glue"
    if "_cffi_backend" in obj:
        return "cffi backend"
    if "libpython" in obj or "/bin/python" in obj or "/lib-dynload/" in obj:
        return "CPython"  # the interpreter and its standard-library extension modules
    if "libcrypto" in obj or "libssl" in obj:
        return "OpenSSL"  # behind hashlib
    return "other"


def main(paths) -> int:
    errors = collections.Counter()
    lost = collections.Counter()
    touching_core = 0
    suppressed = 0
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:  # a process killed mid-write: report, do not hide
            print("%s: unreadable (%s)" % (path, exc))
            continue
        for count in root.iter("suppcounts"):
            suppressed += sum(int(p.findtext("count") or 0) for p in count.iter("pair"))
        for err in root.iter("error"):
            kind = err.findtext("kind") or "?"
            frames = [(f.findtext("obj") or "", f.findtext("fn") or "", f.findtext("file") or "")
                      for f in err.iter("frame")]
            who = next((o for o in map(owner, frames) if o), "other")
            errors[kind, who] += 1
            if any(f[2] == "confd_ha_core.c" for f in frames):
                touching_core += 1
            if kind.startswith("Leak_"):
                lost[kind, who] += int(err.findtext("xwhat/leakedbytes") or 0)
    print("XML files: %d; errors suppressed as CPython's: %d" % (len(paths), suppressed))
    kinds = sorted({k for k, _ in errors})
    for kind in kinds:
        parts = ", ".join("%s %d" % (o, errors[kind, o]) for o in OWNERS if errors[kind, o])
        print("%-22s %s" % (kind, parts))
    for kind in ("Leak_DefinitelyLost", "Leak_IndirectlyLost", "Leak_PossiblyLost"):
        parts = ", ".join("%s %d" % (o, lost[kind, o]) for o in OWNERS if lost[kind, o])
        print("%-22s bytes: %s" % (kind, parts or "0"))
    print("errors with a frame in csrc/confd_ha_core.c: %d" % touching_core)
    core_owned = sum(n for (k, o), n in errors.items() if o == "confd_ha core")
    return 1 if touching_core or core_owned else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
