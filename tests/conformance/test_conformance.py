"""Every scenario replayed on the emulator and compared with its recording from real ConfD;
and, when pointed at a real ConfD, run live and compared (or recorded, with ``--record``)."""

from __future__ import annotations

import os

import pytest

from . import runner, scenarios, targets, transcript

RECORDED_VERSION = "8.2.5"
SCENARIOS = scenarios.load()
NAMES = sorted(SCENARIOS)


def _base_ip(name: str) -> str:
    # Each scenario gets its own block of loopback addresses, so that a node of one scenario
    # never meets a lingering connection of the previous one.
    net = os.environ.get("CONFORMANCE_NET", "127.77")
    return "%s.%d.1" % (net, NAMES.index(name) % 250 + 1)


def _path(name: str, version: str = RECORDED_VERSION) -> str:
    return os.path.join(transcript.recording_dir(version), name + ".json")


def _run(name: str, target) -> list:
    try:
        return runner.run(SCENARIOS[name], target, _base_ip(name))
    finally:
        targets.remove_workdir(target.workdir)


def _check(want: list, got: list) -> None:
    diff = transcript.differences(want, got)
    if diff:
        pytest.fail("transcript differs from the recording:\n" + "\n".join(diff), pytrace=False)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", NAMES)
def test_emulator_matches_recording(name):
    rec = transcript.load(_path(name))
    assert rec["scenario"] == name
    got = _run(name, targets.Emulator(targets.make_workdir()))
    _check(rec["transcript"], got)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", NAMES)
def test_real_confd_matches_recording(name, realconfd, record):
    target = targets.RealConfD(targets.make_workdir(), realconfd)
    version = target.version()
    got = _run(name, target)
    if record:
        transcript.save(_path(name, version), SCENARIOS[name], got, version)
        return
    _check(transcript.load(_path(name, version))["transcript"], got)


def test_every_recording_has_a_scenario():
    folder = transcript.recording_dir(RECORDED_VERSION)
    names = {f[:-5] for f in os.listdir(folder) if f.endswith(".json")} if os.path.isdir(folder) else set()
    assert names <= set(NAMES), "recordings without a scenario: %s" % sorted(names - set(NAMES))
