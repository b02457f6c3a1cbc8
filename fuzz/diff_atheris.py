"""Differential fuzzing of the Python protocol layer (atheris: libFuzzer driving Python).

    python fuzz/diff_atheris.py [--target=NAME] [libFuzzer flags...] [CORPUS_DIR...]

Targets (default ``decode``) are the checks of ``fuzz/oracles.py``:

``decode``
    ``confd_ha._codec.decode`` (the C core) against ``tests/refcodec.py`` on arbitrary
    bytes: the same term by ``refcodec.same_term``, or both fail -- and then the C status
    names the refcodec error kind. (An old FLOAT whose text overflows, 1e999, is accepted by
    the C core and refused by ``_codec.decode``: both fail.)
``reply`` / ``status``
    ``_protocol.decode_reply`` / ``decode_status`` against oracles written from the
    wire-protocol decisions on top of ``refcodec.decode``.
``messages``, ``handshake``, ``core``
    the other decoders (a result or a clean ``Error``), the handshake parsers, the C entry
    points through cffi. ``all`` runs every check on each input.

Give a scratch directory as the first CORPUS_DIR (libFuzzer writes new inputs there), then the
committed corpora as seeds, e.g. ``fuzz/build/atheris/decode fuzz/corpus/decode``. A finding is
written as ``crash-*`` (see ``-artifact_prefix=``): keep a copy in ``fuzz/regressions/python/``
so that ``tests/test_fuzz_corpus.py`` replays it.
"""

from __future__ import annotations

import os
import sys

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.append(ROOT)  # an installed confd_ha comes first; else the source tree's

with atheris.instrument_imports():
    import refcodec
    from confd_ha import _codec, _protocol, error, value
    import oracles

# Imported inside the block above only so that atheris instruments them for coverage.
INSTRUMENTED = (refcodec, _codec, _protocol, error, value)


def check_all(data: bytes) -> None:
    for check in oracles.CHECKS.values():
        check(data)


def main() -> None:
    target = "decode"
    argv = []
    for arg in sys.argv:
        if arg.startswith("--target="):
            target = arg.split("=", 1)[1]
        else:
            argv.append(arg)
    check = check_all if target == "all" else oracles.CHECKS[target]
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
