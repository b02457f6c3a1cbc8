"""A short libFuzzer run of every C-core harness in fuzz/ (about 4 s each).

Builds the harnesses with clang (``fuzz/build.sh``, ASan + UBSan + libFuzzer) into a temporary
directory, replays the regression inputs, then fuzzes each harness from its committed corpus:
any crash, sanitizer report or failed harness check fails the test. Skipped when clang or its
libFuzzer runtime is missing (Debian: ``apt-get install clang libclang-rt-14-dev``). The long
campaigns are in docs/RELIABILITY.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

FUZZ_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz")
HARNESSES = ["decode", "reply", "status", "handshake", "roundtrip"]
SECONDS = 4


def _skip_reason(tmp):
    if not os.path.isfile(os.path.join(FUZZ_DIR, "build.sh")):
        return "no fuzz/ directory next to tests/"
    clang = shutil.which("clang")
    if not clang:
        return "clang not installed (apt-get install clang libclang-rt-14-dev)"
    probe = os.path.join(tmp, "probe.c")
    with open(probe, "w") as f:
        f.write("#include <stddef.h>\n#include <stdint.h>\n"
                "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                " { (void)d; (void)n; return 0; }\n")
    res = subprocess.run([clang, "-fsanitize=fuzzer,address,undefined", probe, "-o",
                          os.path.join(tmp, "probe")], capture_output=True, text=True,
                         timeout=60, env=_env())
    if res.returncode != 0:
        return "clang cannot link a libFuzzer binary (libclang-rt-*-dev missing?): %s" % (
            res.stderr.strip().splitlines()[-1:] or ["?"])[0]
    return None


def _clang():
    return shutil.which("clang")


def _env(**extra):
    """The environment for clang and the harnesses: without a preloaded sanitizer runtime
    (fuzz/asan_tests.sh preloads gcc's, which clashes with the harnesses' own)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def fuzz_build(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fuzzbuild"))
    reason = _skip_reason(out)
    if reason:
        pytest.skip(reason)
    env = _env(FUZZ_BUILD_DIR=out, CC=_clang())
    res = subprocess.run(["bash", os.path.join(FUZZ_DIR, "build.sh")], env=env,
                         capture_output=True, text=True, timeout=110)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


@pytest.mark.parametrize("harness", HARNESSES)
def test_fuzz_smoke(fuzz_build, harness, tmp_path):
    binary = os.path.join(fuzz_build, "fuzz_" + harness)
    regressions = os.path.join(FUZZ_DIR, "regressions", harness)
    if os.path.isdir(regressions) and os.listdir(regressions):
        files = [os.path.join(regressions, f) for f in sorted(os.listdir(regressions))]
        res = subprocess.run([binary] + files, capture_output=True, text=True, timeout=60,
                             env=_env())
        assert res.returncode == 0, res.stderr[-4000:]
    work = tmp_path / "work"
    work.mkdir()
    res = subprocess.run(
        [binary, str(work), os.path.join(FUZZ_DIR, "corpus", harness),
         "-max_total_time=%d" % SECONDS, "-max_len=8192", "-timeout=10", "-rss_limit_mb=2048",
         "-use_value_profile=1", "-print_final_stats=1",
         "-artifact_prefix=%s/" % tmp_path],
        capture_output=True, text=True, timeout=SECONDS + 60, env=_env())
    assert res.returncode == 0, res.stderr[-4000:]
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", res.stderr)
    assert runs and int(runs.group(1)) > 1000, res.stderr[-2000:]
    assert "DONE" in res.stderr
