"""Fixtures of the client differential for the options of ``tests/conftest.py``."""

from __future__ import annotations

import pytest

from . import sides, worlds


@pytest.fixture(scope="session")
def cisco(request):
    """Cisco's ``_confd`` as a :class:`~.sides.Side`."""
    path = sides.cisco_dir(request.config.getoption("--cisco-module"))
    if not path:
        pytest.skip("no Cisco module: give --cisco-module DIR or set %s (a directory holding "
                    "Cisco's built _confd, docs/differential.md)" % sides.CISCO_ENV)
    try:
        return sides.cisco_side(path)
    except ImportError as exc:
        pytest.fail("cannot import Cisco's _confd from %s: %s" % (path, exc))


@pytest.fixture(scope="session")
def ours():
    return sides.confd_ha_side()


@pytest.fixture(scope="module")
def emulated_world():
    """Four emulated nodes on 127.78.0.1..4, as processes."""
    world = worlds.World(worlds.EmulatorLauncher()).start()
    yield world
    world.stop()
