"""Options and shared fixtures of the whole test suite.

``--realconfd DIR`` (or ``REALCONFD_DIR``): a ConfD installation; the conformance suite then
runs every scenario live on it too. ``--record``: with ``--realconfd``, write the live
transcripts as the new recordings (docs/conformance.md). ``--cisco-module DIR`` (or
``CISCO_CONFD_PY``): with ``--realconfd``, the client differential compares ``confd_ha`` with
Cisco's ``_confd`` live, and ``--record`` rewrites its recording (docs/differential.md).

Fixtures: ``cluster``/``fast`` (emulated nodes added one by one), ``trio`` and ``clusters``
(whole emulated clusters), ``daemons`` (scripted fake daemons). Helpers that are not
fixtures live in modules of their own, never in a test module: ``waiting`` (waits on a
condition), ``events_helpers`` (HA events as sent and as read), ``emulator_helpers``,
``fakedaemon``, ``net_helpers``, ``ipc_helpers``, ``cli_helpers``, ``demo_helpers``,
``core_helpers``.
tests/agent/conftest.py adds the agent's ``etcd_binary`` and ``etcd``.
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
def fast(request):
    """Emulated nodes as in ``cluster`` with the short tick of the test module (its ``TICK``):
    a silent peer is found dead 2-3 ticks after it stopped. A module's ``JOIN_TIMEOUT``, if it
    has one, is the nodes' join deadline."""
    from emulator_helpers import Cluster

    c = Cluster(tick=request.module.TICK,
                join_timeout=getattr(request.module, "JOIN_TIMEOUT", None))
    yield c
    c.close()


@pytest.fixture
def trio():
    """Three emulated nodes with 0.2 s ticks, through ``confd_ha.testing.cluster``."""
    from confd_ha.testing.cluster import Cluster

    with Cluster(3, tick_timeout=0.2) as c:
        yield c


class _Made:
    """What a factory fixture made: things to ``stop()`` and sockets to close at teardown."""

    def __init__(self) -> None:
        self.things: list = []
        self.sockets: list = []

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        for thing in self.things:
            thing.stop()


@pytest.fixture
def clusters():
    """Factory: ``clusters(n=2, **config)`` starts ``n`` emulated nodes through
    ``confd_ha.testing.cluster`` with ``events_helpers.TICK`` ticks unless ``tick_timeout`` is
    given. Each cluster's ``sockets`` is one list; at teardown every socket in it is closed and
    every cluster stopped."""
    from confd_ha.testing.cluster import Cluster
    from events_helpers import TICK

    made = _Made()

    def make(n: int = 2, **config) -> Cluster:
        c = Cluster(n, tick_timeout=config.pop("tick_timeout", TICK), **config)
        made.things.append(c)
        c.sockets = made.sockets
        return c

    yield make
    made.close()


@pytest.fixture
def daemons():
    """Factory: ``daemons(script0, script1, ..., family='inet')`` → a started
    ``fakedaemon.FakeDaemon``; every daemon and every socket made through its
    ``client_socket`` is cleaned up."""
    from fakedaemon import FakeDaemon, ipv6_available

    made = _Made()

    def make(*scripts, family: str = "inet") -> FakeDaemon:
        if family == "inet6" and not ipv6_available():
            pytest.skip("no IPv6 on this host")
        d = FakeDaemon(*scripts, family=family)
        orig = d.client_socket

        def client_socket(timeout: float | None = 2.0):
            s = orig(timeout)
            made.sockets.append(s)
            return s

        d.client_socket = client_socket
        made.things.append(d)
        return d

    yield make
    made.close()
