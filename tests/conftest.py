"""Options for the whole test suite.

``--realconfd DIR`` (or ``REALCONFD_DIR``): a ConfD installation; the conformance suite then
runs every scenario live on it too. ``--record``: with ``--realconfd``, write the live
transcripts as the new recordings (docs/conformance.md). ``--cisco-module DIR`` (or
``CISCO_CONFD_PY``): with ``--realconfd``, the client differential compares ``confd_ha`` with
Cisco's ``_confd`` live, and ``--record`` rewrites its recording (docs/differential.md).
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("confd-ha")
    group.addoption("--realconfd", default=None,
                    help="a ConfD installation directory (bin/confd): run the conformance "
                         "scenarios on it too (default: $REALCONFD_DIR)")
    group.addoption("--record", action="store_true",
                    help="with --realconfd: write the live transcripts as the recordings")
    group.addoption("--cisco-module", default=None, metavar="DIR",
                    help="a directory holding Cisco's built _confd package: run the client "
                         "differential live against it (default: $CISCO_CONFD_PY; "
                         "docs/differential.md)")


@pytest.fixture(scope="session")
def realconfd(request):
    """The ConfD installation given by ``--realconfd``/``REALCONFD_DIR``; skips without one."""
    path = request.config.getoption("--realconfd") or os.environ.get("REALCONFD_DIR")
    if not path:
        pytest.skip("no real ConfD: give --realconfd DIR or set REALCONFD_DIR to run this "
                    "live (docs/conformance.md, docs/differential.md)")
    if not os.access(os.path.join(path, "bin", "confd"), os.X_OK):
        pytest.fail("--realconfd/REALCONFD_DIR %s has no executable bin/confd" % path)
    return path


@pytest.fixture(scope="session")
def record(request):
    """``--record``: write live transcripts as the recordings."""
    return request.config.getoption("--record")


@pytest.fixture
def cluster():
    """Emulated nodes on one loop thread of this process (``emulator_helpers.Cluster``)."""
    from emulator_helpers import Cluster

    c = Cluster()
    yield c
    c.close()


@pytest.fixture
def trio():
    """Three emulated nodes with 0.2 s ticks, through ``confd_ha.emulator.runner``."""
    from confd_ha.emulator.runner import Cluster

    with Cluster(3, tick_timeout=0.2) as c:
        yield c
