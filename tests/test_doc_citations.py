"""Every rule id that code and tests cite is defined in the repository's own documents.

Comments and docstrings cite the rules of ``docs/wire-protocol.md`` (ids ``W-nn``) and of
``docs/ha-behaviour.md`` (ids ``B-nn``). A rule is defined by a line that starts with its id in
bold, e.g. ``**B-12.**``. These tests read both documents from the repository -- a missing one
is a failure, not a skip -- and check that every id cited under ``confd_ha/``, ``tests/``,
``csrc/``, ``fuzz/`` and ``benchmarks/`` is defined, naming each missing id and where it is
cited. They also check that nothing in the repository points at the specification that used to
live outside it.
"""

from __future__ import annotations

import collections
import os
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()

DOCUMENTS = {
    "W": ROOT / "docs" / "wire-protocol.md",
    "B": ROOT / "docs" / "ha-behaviour.md",
}
CITING_DIRS = ("confd_ha", "tests", "csrc", "fuzz", "benchmarks")

# Directories that hold tool output or caches, never project text.
SKIPPED_DIRS = {".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                ".hypothesis", ".benchmarks", "build", "dist"}
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".so", ".o", ".a", ".dll", ".dylib", ".whl", ".gz"}

CITATION = re.compile(r"\b([WB])-(\d{1,3})\b")
DEFINITION = re.compile(r"^\*\*([WB])-(\d{1,3})\.\*\*", re.MULTILINE)
# Spelled in two pieces so that this file does not match its own pattern.
OLD_SPEC = "shared" + "/spec"


def _rule_id(letter: str, digits: str) -> str:
    """The canonical spelling of an id: two digits at least (``W-5`` is ``W-05``)."""
    return "%s-%02d" % (letter, int(digits))


def _text_files(top: Path) -> Iterator[Path]:
    """Every text file below ``top``, caches and binaries left out."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix in SKIPPED_SUFFIXES or not path.is_file():
                continue
            yield path


def _read_text(path: Path) -> Optional[str]:
    """The file's text, or None for a binary file."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _where(path: Path, text: str, offset: int) -> str:
    return "%s:%d" % (path.relative_to(ROOT).as_posix(), text.count("\n", 0, offset) + 1)


def _citations(letter: str) -> Dict[str, List[str]]:
    """id -> the places (``path:line``) that cite it, for ids starting with ``letter``."""
    found: Dict[str, List[str]] = collections.defaultdict(list)
    for top in CITING_DIRS:
        for path in _text_files(ROOT / top):
            if path.resolve() == HERE:
                continue
            text = _read_text(path)
            if text is None:
                continue
            for m in CITATION.finditer(text):
                if m.group(1) == letter:
                    found[_rule_id(m.group(1), m.group(2))].append(_where(path, text, m.start()))
    return found


def _document(letter: str) -> str:
    path = DOCUMENTS[letter]
    assert path.is_file(), "%s is missing: it defines the %s-nn ids that code and tests cite" % (
        path.relative_to(ROOT).as_posix(), letter)
    return path.read_text(encoding="utf-8")


def _definitions(letter: str) -> List[str]:
    return [_rule_id(a, b) for a, b in DEFINITION.findall(_document(letter)) if a == letter]


@pytest.mark.parametrize("letter", sorted(DOCUMENTS))
def test_document_is_in_the_repository(letter: str) -> None:
    _document(letter)


@pytest.mark.parametrize("letter", sorted(DOCUMENTS))
def test_every_cited_id_is_defined(letter: str) -> None:
    cited = _citations(letter)
    assert cited, "no %s-nn citation found: is the scan looking in the right place?" % letter
    defined = set(_definitions(letter))
    missing = {rule: places for rule, places in cited.items() if rule not in defined}
    report = "\n".join("  %s, cited at %s" % (rule, ", ".join(places[:5]) +
                                              (" and %d more" % (len(places) - 5)
                                               if len(places) > 5 else ""))
                       for rule, places in sorted(missing.items()))
    assert not missing, "%s does not define:\n%s" % (
        DOCUMENTS[letter].relative_to(ROOT).as_posix(), report)


@pytest.mark.parametrize("letter", sorted(DOCUMENTS))
def test_every_id_is_defined_once(letter: str) -> None:
    counts = collections.Counter(_definitions(letter))
    twice = sorted(rule for rule, n in counts.items() if n > 1)
    assert not twice, "defined more than once in %s: %s" % (
        DOCUMENTS[letter].relative_to(ROOT).as_posix(), ", ".join(twice))


def test_nothing_points_at_the_old_specification() -> None:
    places = []
    for path in _text_files(ROOT):
        if path.resolve() == HERE:
            continue
        text = _read_text(path)
        if text is None:
            continue
        start = text.find(OLD_SPEC)
        while start >= 0:
            places.append(_where(path, text, start))
            start = text.find(OLD_SPEC, start + 1)
    assert not places, ("the specification lives in docs/ now; these still point at %s:\n  %s"
                        % (OLD_SPEC, "\n  ".join(places)))
