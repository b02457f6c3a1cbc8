"""The client differential (docs/differential.md).

* CI: every recorded case is run again through ``confd_ha`` -- locally, against the scripted
  peer, or against emulated nodes -- and compared with what Cisco's module did on ConfD 8.2.5
  (the recording). Only the documented deliberate differences (``compare.DELIBERATE``) and
  the known emulator gaps (``compare.EMULATOR_GAPS``) may remain.
* Live (``--realconfd DIR --cisco-module DIR``): every case through both modules on the same
  real ConfD state; ``--record`` rewrites the recording.
"""

from __future__ import annotations

import collections

import pytest

from . import catalogue, compare, recording, runner, worlds
from .cases_local import CONSTANT_GROUPS, in_scope

CASES = catalogue.all_cases()
RECORDED = recording.load()
_KIND_ORDER = {"local": 0, "peer": 1, "world": 2, "events": 3}
NAMES = sorted(CASES, key=lambda n: (_KIND_ORDER[CASES[n].kind], n))


def _recorded(name: str) -> list:
    if RECORDED is None:
        pytest.fail("no recording at %s: record one live (docs/differential.md)"
                    % recording.path())
    if name not in RECORDED["cases"]:
        pytest.fail("case %s is not in the recording: the catalogue changed, record again "
                    "live (docs/differential.md)" % name)
    return RECORDED["cases"][name]["cisco"]


def test_recording_is_intact():
    doc = RECORDED
    assert doc is not None, "no recording at %s" % recording.path()
    assert doc["sha256"] == recording.digest(doc), \
        "the recording was changed after it was written: record it again live"
    assert doc["confd_version"] == recording.CONFD_VERSION and doc["recorded_at"]
    assert sorted(doc["cases"]) == sorted(CASES), \
        "recorded cases and the catalogue differ: record again live"


@pytest.mark.parametrize("name", NAMES)
def test_case_matches_the_recording(name, ours, request):
    """confd_ha today against Cisco's recorded outcome."""
    want = _recorded(name)
    case = CASES[name]
    world = request.getfixturevalue("emulated_world") if case.kind in ("world",
                                                                       "events") else None
    got = runner.run_case(case, [ours], world)["confd_ha"]
    verdict, _ = compare.explain(name, want, got)
    if verdict != "differs":
        for gap in compare.EMULATOR_GAPS:
            if gap.covers(name):
                pytest.fail("case %s now matches ConfD: remove it from EMULATOR_GAPS (%s)"
                            % (name, gap.key), pytrace=False)
        return
    if world is not None:
        verdict, keys = compare.explain(name, want, got, compare.EMULATOR_GAPS)
        if verdict == "explained":
            pytest.xfail("known emulator gap: %s" % ", ".join(keys))
    pytest.fail("\n".join(["confd_ha differs from Cisco's module (ConfD %s) in %s:"
                           % (RECORDED["confd_version"], name)]
                          + compare.diff_lines(want, got)), pytrace=False)


def test_cisco_constant_names_are_all_covered(cisco):
    """Every in-scope public name of Cisco's modules has its constant case (live)."""
    modules = {"_confd.ha": cisco.ha, "_confd.events": cisco.events, "_confd": cisco.top}
    covered = collections.defaultdict(set)
    for modname, names, _ in CONSTANT_GROUPS:
        covered[modname].update(names)
    missing = {modname: sorted(n for n in dir(mod) if not n.startswith("_")
                               and in_scope(modname, n) and n not in covered[modname])
               for modname, mod in modules.items()}
    assert not any(missing.values()), missing


@pytest.mark.timeout(3600)
def test_live_differential(realconfd, cisco, ours, request):
    """Both modules, every case, one real ConfD world; ``--record`` writes the recording."""
    world = worlds.World(worlds.RealLauncher(realconfd))
    version = world.launcher.version()
    results, kinds, verdicts = {}, {}, collections.Counter()
    failures = []
    world.start()
    try:
        for name in NAMES:
            case = CASES[name]
            results[name] = runner.run_case(case, [cisco, ours], world)
            kinds[name] = case.kind
            verdict, keys = compare.explain(name, results[name]["cisco"],
                                            results[name]["confd_ha"])
            verdicts[verdict] += 1
            if verdict == "differs":
                failures.append("%s:" % name)
                failures.extend(compare.diff_lines(results[name]["cisco"],
                                                   results[name]["confd_ha"]))
    finally:
        world.stop()
    summary = {"cases": len(results), "same": verdicts["same"],
               "explained": verdicts["explained"], "differs": verdicts["differs"],
               "by_kind": dict(collections.Counter(kinds.values()))}
    if request.config.getoption("--record"):
        where = recording.save(recording.build(results, kinds, version, summary))
        print("differential recording written: %s (%s)" % (where, summary))
    assert not failures, "\n".join(["%(differs)d of %(cases)d cases differ:" % summary]
                                   + failures)
