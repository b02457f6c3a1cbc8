"""pytest fixtures that start emulated ConfD HA nodes (registered through ``pytest11``).

Installed with ``confd-ha``, so every pytest run has them; importing this module costs nothing
(the emulator is imported inside the fixtures). Everything runs on loopback addresses --
``127.0.0.1``, ``.2``, ... by default -- and free ports, and is torn down after the test:
nodes, sockets, threads, child processes, data directories (under ``tmp_path``).

``ha_address_prefix`` -- the prefix of those addresses: node *i* of a factory gets
``prefix + str(i)``. Default ``127.0.0.``; set it for a whole run with the ini option
``confd_ha_address_prefix`` (``pytest -o confd_ha_address_prefix=127.0.5.``), or override
the fixture in a ``conftest.py`` (e.g. one prefix per xdist worker). ``ha_cluster(...,
prefix=...)`` also takes one per cluster.

``ha_node`` -- one started in-process node (:class:`confd_ha.testing.node.SyncNode`) on
PREFIX1 (127.0.0.1), free IPC port, a reserved free HA port, tick timeout 1 s::

    def test_status(ha_node):
        s = ha_node.connect_ha("token")          # real confd_ha.connect
        assert ha.status(s) == (ha.STATE_NONE, [])

``ha_node_factory`` -- ``make(name=None, *, address=None, tick_timeout=1.0, data_dir=None,
start=True, control=False, **NodeConfig fields) -> SyncNode``. Nodes go to PREFIX1, PREFIX2, …
(127.0.0.1, .2, …) in creation order and share one reserved HA port, so they can join each
other (B-12).
``data_dir=True`` puts the datastore in ``tmp_path/<name>``.

``ha_cluster`` -- ``make(n=3, *, tick_timeout=1.0, data_dirs=None, base=1, prefix=None,
control=False, **NodeConfig fields) -> Cluster`` (:class:`confd_ha.testing.cluster.Cluster`):
started nodes on PREFIX+base … PREFIX+(base+n-1) (prefix: the call's, else
``ha_address_prefix``) with one HA port; ``data_dirs=True`` gives each node a directory
under ``tmp_path``. ``cluster.form(token)`` makes node 0 primary and the others its
secondaries through the real client::

    def test_failover(ha_cluster):
        c = ha_cluster(3, tick_timeout=0.3)
        c.form("tok")
        c[0].kill()
        c[1].wait_state(ha.STATE_NONE)

``ha_emulator`` -- the :class:`~confd_ha.testing.loop.EmulatorThread` the fixtures above
share (one loop thread per test).

``ha_node_process_factory`` -- ``make(*extra_args, address=None, tick_timeout=1.0,
data_dir=None, ready_timeout=20, ha_port=None) -> EmulatorProcess``: ``confd-ha emulate`` in a
child process (``--ipc-port 0``, ``--exit-on-stdin-eof``; addresses PREFIX1, PREFIX2, …
sharing one reserved HA port as for ``ha_node_factory``), returned once it
printed its ready line; it has ``ipc_address``, ``ipc_port``, ``ha_address``, ``ha_port``,
``control`` (endpoint name), ``pid``, ``control(op, **args)``, ``send_signal``,
``terminate()``, ``stderr_text()``. Teardown sends SIGTERM, waits, and kills if needed.
``ha_node_process`` -- one such process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Union, cast

import pytest

if TYPE_CHECKING:
    from .cluster import Cluster
    from .loop import EmulatorThread
    from .node import SyncNode
    from .ports import PortReservation
    from .process import EmulatorProcess

DataDir = Union[None, bool, str, Path]

DEFAULT_TICK = 1.0
DEFAULT_PREFIX = "127.0.0."
PREFIX_INI = "confd_ha_address_prefix"
_ADDRESS_BLOCK = 8      # addresses on which a factory reserves its HA port up front


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(PREFIX_INI, "address prefix of the confd-ha fixtures' emulated nodes: "
                  "node i listens on PREFIX + i (default %s)" % DEFAULT_PREFIX,
                  default=DEFAULT_PREFIX)


def check_prefix(prefix: str) -> str:
    """``prefix`` if PREFIX1 … PREFIX254 are IP addresses, else ``ValueError``."""
    import ipaddress

    try:
        for n in (1, 254):
            ipaddress.ip_address(prefix + str(n))
    except ValueError:
        raise ValueError("%r is not an address prefix: it followed by 1 must be an IP address "
                         "(e.g. 127.0.5.)" % prefix) from None
    return prefix


class _Addresses:
    """PREFIX1, PREFIX2, … in order of use, with one HA port reserved on all of them (B-12)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = check_prefix(prefix)
        self.count = 0
        self.reservation: Optional[PortReservation] = None

    def next(self) -> str:
        self.count += 1
        if self.count > 254:
            raise RuntimeError("a test can place at most 254 nodes on %sN" % self.prefix)
        return "%s%d" % (self.prefix, self.count)

    def ha_port(self, address: str) -> int:
        from .ports import PortReservation, loopback_addresses

        if self.reservation is None:
            self.reservation = PortReservation(loopback_addresses(_ADDRESS_BLOCK,
                                                                  prefix=self.prefix))
        self.reservation.add(address)
        return self.reservation.port

    def close(self) -> None:
        if self.reservation is not None:
            self.reservation.close()


class _NodeFactory:
    """Nodes on PREFIX1, PREFIX2, … in order of creation: a :class:`Cluster` on the test's
    emulator thread, its HA port reserved on the first addresses and on every node's."""

    def __init__(self, emulator: "EmulatorThread", tmp_path: Path,
                 prefix: str = DEFAULT_PREFIX) -> None:
        from .cluster import Cluster

        self.tmp_path = tmp_path
        self.prefix = check_prefix(prefix)
        self.count = 0
        self.cluster = Cluster(0, reserve=_ADDRESS_BLOCK, prefix=self.prefix,
                               tick_timeout=DEFAULT_TICK, emulator=emulator)
        emulator.add_cleanup(self.cluster.stop)

    def __call__(self, name: Optional[str] = None, *, address: Optional[str] = None,
                 tick_timeout: float = DEFAULT_TICK, data_dir: DataDir = None,
                 start: bool = True, control: bool = False, **config: Any) -> "SyncNode":
        if address is None:
            self.count += 1
            if self.count > 254:
                raise RuntimeError("a test can place at most 254 nodes on %sN" % self.prefix)
            address = "%s%d" % (self.prefix, self.count)
        name = name or "node%d" % self.count
        if data_dir is True:
            data_dir = self.tmp_path / "ha-nodes" / name
        return self.cluster.add(
            name, address, start=start, control=control, tick_timeout=tick_timeout,
            data_dir=None if data_dir is None else str(data_dir), **config)


@pytest.fixture
def ha_address_prefix(request: pytest.FixtureRequest) -> str:
    """The prefix of the fixtures' node addresses (ini ``confd_ha_address_prefix``, default
    ``127.0.0.``); override this fixture to choose another per test or per worker."""
    return check_prefix(str(request.config.getini(PREFIX_INI) or DEFAULT_PREFIX))


@pytest.fixture
def ha_emulator() -> Iterator["EmulatorThread"]:
    """An :class:`~confd_ha.testing.loop.EmulatorThread` stopped after the test."""
    from .loop import EmulatorThread

    emu = EmulatorThread().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def ha_node_factory(ha_emulator: "EmulatorThread", tmp_path: Path,
                    ha_address_prefix: str) -> _NodeFactory:
    """Factory of started in-process nodes on PREFIX1, PREFIX2, … sharing one HA port."""
    return _NodeFactory(ha_emulator, tmp_path, ha_address_prefix)


@pytest.fixture
def ha_node(ha_node_factory: _NodeFactory) -> "SyncNode":
    """One started in-process node (a SyncNode) on PREFIX1 (127.0.0.1) with free ports."""
    return ha_node_factory("node")


@pytest.fixture
def ha_cluster(ha_emulator: "EmulatorThread", tmp_path: Path,
               ha_address_prefix: str) -> Iterator[Callable[..., "Cluster"]]:
    """Factory: ``ha_cluster(n=3, tick_timeout=1.0, data_dirs=None, prefix=None, ...) ->
    Cluster``."""
    from .cluster import Cluster

    clusters: List[Cluster] = []

    def make(n: int = 3, *, tick_timeout: float = DEFAULT_TICK,
             data_dirs: Union[None, bool, List[Any]] = None, prefix: Optional[str] = None,
             **kwargs: Any) -> Cluster:
        if data_dirs is True:
            root = tmp_path / ("ha-cluster%d" % len(clusters))
            data_dirs = [root / ("n%d" % (i + 1)) for i in range(n)]
        prefix = check_prefix(ha_address_prefix if prefix is None else prefix)
        c = Cluster(n, tick_timeout=tick_timeout, data_dirs=cast(Optional[List[Any]], data_dirs),
                    emulator=ha_emulator, prefix=prefix, **kwargs)
        clusters.append(c)
        return c

    try:
        yield make
    finally:
        for c in reversed(clusters):
            c.stop()


@pytest.fixture
def ha_node_process_factory(tmp_path: Path, ha_address_prefix: str
                            ) -> Iterator[Callable[..., "EmulatorProcess"]]:
    """Factory of ``confd-ha emulate`` child processes, each returned once ready."""
    from .process import EmulatorProcess

    procs: List[EmulatorProcess] = []
    addresses = _Addresses(ha_address_prefix)

    def make(*extra_args: str, address: Optional[str] = None,
             tick_timeout: float = DEFAULT_TICK, data_dir: DataDir = None,
             ready_timeout: float = 20.0, ha_port: Optional[int] = None) -> EmulatorProcess:
        if address is None:
            address = addresses.next()
        if ha_port is None:
            ha_port = addresses.ha_port(address)
        args = ["--ipc-address", address, "--ipc-port", "0", "--ha-port", str(ha_port),
                "--tick-timeout", repr(float(tick_timeout))]
        if data_dir is True:
            data_dir = tmp_path / ("ha-process%d" % len(procs))
        if data_dir is not None:
            args += ["--data-dir", str(data_dir)]
        proc = EmulatorProcess(*args, *extra_args, ready_timeout=ready_timeout)
        procs.append(proc)
        proc.start()
        return proc

    try:
        yield make
    finally:
        try:
            for p in procs:
                p.close()
        finally:
            addresses.close()


@pytest.fixture
def ha_node_process(ha_node_process_factory: Callable[..., "EmulatorProcess"]
                    ) -> "EmulatorProcess":
    """One ``confd-ha emulate`` child process on PREFIX1 (an EmulatorProcess)."""
    return ha_node_process_factory()
