"""Replays every committed fuzz input -- fuzz/corpus/<harness>/ and fuzz/regressions/<name>/ --
through the C core's entry points (via cffi) and the Python protocol layer.

Each input must give a valid result or a clean ``confd_ha.error.Error`` (``BadOrder`` for the
emulator's order decoder), never a crash or another exception, and must agree with the oracles
of ``fuzz/oracles.py``: ``tests/refcodec.py`` for the generic decoder, the wire-protocol
decisions for replies (W-18) and status replies (W-20..W-25), glibc for IPv6 text. The
regression inputs are the findings of the fuzzing campaigns (docs/RELIABILITY.md).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

FUZZ_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz")

# Which checks a directory's inputs get: term inputs all term checks, handshake inputs the
# fixed-layout parsers; regression inputs everything.
_TERM_CHECKS = ("core", "decode", "reply", "status", "messages")
_CHECKS_FOR = {
    "decode": _TERM_CHECKS,
    "roundtrip": _TERM_CHECKS,
    "reply": _TERM_CHECKS,
    "status": _TERM_CHECKS,
    "handshake": ("core", "handshake"),
}
_ALL_CHECKS = _TERM_CHECKS + ("handshake",)


def _load_oracles():
    spec = importlib.util.spec_from_file_location("fuzz_oracles",
                                                  os.path.join(FUZZ_DIR, "oracles.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _input_dirs():
    found = []
    for group in ("corpus", "regressions"):
        top = os.path.join(FUZZ_DIR, group)
        if os.path.isdir(top):
            found += [(group, name) for name in sorted(os.listdir(top))
                      if os.path.isdir(os.path.join(top, name))]
    return found


INPUT_DIRS = _input_dirs()


def test_fuzz_inputs_are_present():
    """The corpora exist (a tree without fuzz/ would silently replay nothing)."""
    if not os.path.isdir(FUZZ_DIR):
        pytest.skip("no fuzz/ directory next to tests/ (installed without the source tree)")
    names = {name for group, name in INPUT_DIRS if group == "corpus"}
    assert names >= set(_CHECKS_FOR), names
    for name in _CHECKS_FOR:
        assert len(os.listdir(os.path.join(FUZZ_DIR, "corpus", name))) >= 10, name


@pytest.mark.parametrize("group, name", INPUT_DIRS, ids=["%s/%s" % d for d in INPUT_DIRS])
def test_replay(group, name):
    oracles = _load_oracles()
    checks = _CHECKS_FOR.get(name, _ALL_CHECKS) if group == "corpus" else _ALL_CHECKS
    directory = os.path.join(FUZZ_DIR, group, name)
    failures = []
    files = sorted(os.listdir(directory))
    assert files, directory
    for fname in files:
        with open(os.path.join(directory, fname), "rb") as f:
            data = f.read()
        for check in checks:
            try:
                oracles.CHECKS[check](data)
            except oracles.Mismatch as exc:
                failures.append("%s [%s]: %s" % (fname, check, str(exc)[:300]))
    assert not failures, "%d of %d inputs fail:\n%s" % (
        len(failures), len(files), "\n".join(failures[:20]))
