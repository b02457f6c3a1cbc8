"""Packaging, checked the way a user meets it: the abi3 wheel that tools/build_wheel.sh builds
installs and runs on two CPython versions without a compiler, and in a fresh copy of the
repository a Python started in its root imports the package after the README's `pip install .`
(or fails with advice that, followed, makes it work).

These tests run pip (packages come from the configured package index, as in the README's
set-up); each takes 15-40 s. A second CPython is looked for on this machine only (python3.N on
PATH, ~/.pyenv/versions): nothing is downloaded to find one, and the wheel test is skipped,
saying so, when there is none.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOME = os.path.expanduser("~")
# What a user's clone holds: everything but the build products and caches that .gitignore lists.
_NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "wheelhouse", "*.egg-info", "__pycache__", "*.py[cod]",
    "*.so", "*.o", "_core.c", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache")


def _run(cmd, cwd, timeout=600, env=None):
    return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)


def _version(python):
    out = _run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], "/")
    return out.stdout.strip() if out.returncode == 0 else None


def second_python():
    """A CPython >= 3.9 of another minor version than this one that can make a venv (the
    oldest found), or None."""
    mine = "%d.%d" % sys.version_info[:2]
    for minor in range(9, 15):
        v = "3.%d" % minor
        if v == mine:
            continue
        found = [shutil.which("python" + v)] + sorted(
            glob.glob(os.path.join(HOME, ".pyenv", "versions", v + ".*", "bin", "python")))
        for cand in found:
            if not cand or not os.access(cand, os.X_OK):
                continue
            check = _run([cand, "-c", "import sys, ensurepip, venv; "
                          "sys.exit(sys.implementation.name != 'cpython')"], "/", timeout=60)
            if check.returncode == 0 and _version(cand) == v:
                return cand
    return None


@pytest.mark.timeout(900)
def test_abi3_wheel_installs_and_runs_on_two_pythons(tmp_path):
    other = second_python()
    if other is None:
        pytest.skip("no second CPython >= 3.9 on this machine (python3.N on PATH or "
                    "~/.pyenv/versions/3.N.*): the abi3 wheel is tried on this Python only by "
                    "tools/build_wheel.sh, not here")
    env = dict(os.environ, PYTHON=sys.executable, SECOND_PYTHON=other, REQUIRE_SECOND_PYTHON="1")
    run = _run(["bash", os.path.join(ROOT, "tools", "build_wheel.sh"), str(tmp_path / "out")],
               ROOT, env=env)
    assert run.returncode == 0, run.stdout
    ran = re.findall(r"^installed and ran (\S+) on Python (\S+) without a compiler$",
                     run.stdout, re.M)
    assert len(ran) == 2, run.stdout
    versions = {v.rsplit(".", 1)[0] for _, v in ran}
    assert versions == {"%d.%d" % sys.version_info[:2], _version(other)}, run.stdout
    assert run.stdout.count("smoke test ok on Python") == 2, run.stdout

    (wheel,) = glob.glob(str(tmp_path / "out" / "*.whl"))
    assert re.fullmatch(r"confd_ha-[^-]+-cp39-abi3-manylinux\S*\.whl", os.path.basename(wheel))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        licence = z.read(next(n for n in names if n.endswith(".dist-info/licenses/LICENSE")))
        assert "confd_ha/py.typed" in names
    assert "License-Expression: Apache-2.0" in meta
    assert licence.decode() == open(os.path.join(ROOT, "LICENSE"), encoding="utf-8").read()


def _clone(dest):
    """A copy of the repository as a fresh clone has it (no compiled core, no build output)."""
    shutil.copytree(ROOT, dest, ignore=_NOT_IN_A_CLONE)
    assert not glob.glob(os.path.join(dest, "confd_ha", "_core*.so"))
    return dest


# The README's first example, made runnable: the same calls against a scripted daemon on
# loopback (tools/wheel_smoke.py), run from the clone's root as `python example.py` would be.
EXAMPLE = """\
import sys
sys.path.insert(1, "tools")              # after '' (the clone's root): confd_ha/ comes from it
import confd_ha, confd_ha._core
print("package", confd_ha.__file__)
print("core", confd_ha._core.__file__)
import wheel_smoke
wheel_smoke.check_calls()
"""


@pytest.mark.timeout(900)
def test_clone_root_imports_after_readme_setup(tmp_path):
    clone = _clone(str(tmp_path / "clone"))
    env_dir = os.path.join(clone, ".venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = os.path.join(env_dir, "bin", "python")

    # Before the set-up: no compiled core anywhere. The error says what to run, exactly.
    before = _run([python, "-c", "import confd_ha"], clone)
    assert before.returncode != 0
    message = before.stdout.strip().splitlines()[-1]
    assert message.startswith("ImportError: confd_ha is imported from the source tree %s"
                              % clone), message
    advice = re.search(r"\('(\S+ -m pip install \.)' in (\S+);", message)
    assert advice and advice.group(2) == clone, message

    # Follow the advice (it is the README's set-up: `pip install .` in the clone's venv).
    install = _run(advice.group(1).split(), advice.group(2))
    assert install.returncode == 0, install.stdout

    after = _run([python, "-c", EXAMPLE], clone)
    assert after.returncode == 0, after.stdout
    assert "package %s" % os.path.join(clone, "confd_ha", "__init__.py") in after.stdout
    site_packages = os.path.join(env_dir, "lib")
    core = re.search(r"^core (\S+)$", after.stdout, re.M).group(1)
    assert core.startswith(site_packages) and core.endswith(".abi3.so"), after.stdout
    assert "calls ok: connect() and status()" in after.stdout, after.stdout

    # The other way out of the error: build the core in place (pip install -e .) -- then the
    # clone's own core is used.
    editable = _run([python, "-m", "pip", "install", "-q", "-e", "."], clone)
    assert editable.returncode == 0, editable.stdout
    again = _run([python, "-c", EXAMPLE], clone)
    assert again.returncode == 0, again.stdout
    assert "core %s" % os.path.join(clone, "confd_ha") in again.stdout, again.stdout
