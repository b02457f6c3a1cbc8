"""pytest fixtures that start emulated ConfD HA nodes (registered through ``pytest11``).

Installed with ``confd-ha``, so every pytest run has them; importing this module costs nothing
(the emulator is imported inside the fixtures). Everything runs on 127.0.0.x addresses and
free ports, and is torn down after the test: nodes, sockets, threads, child processes, data
directories (under ``tmp_path``).

``ha_node`` -- one started in-process node (:class:`confd_ha.emulator.runner.SyncNode`) on
127.0.0.1, free IPC port, a reserved free HA port, tick timeout 1 s::

    def test_status(ha_node):
        s = ha_node.connect_ha("token")          # real confd_ha.connect
        assert ha.status(s) == (ha.STATE_NONE, [])

``ha_node_factory`` -- ``make(name=None, *, address=None, tick_timeout=1.0, data_dir=None,
start=True, control=False, **NodeConfig fields) -> SyncNode``. Nodes go to 127.0.0.1, .2, …
in creation order and share one reserved HA port, so they can join each other (B-12).
``data_dir=True`` puts the datastore in ``tmp_path/<name>``.

``ha_cluster`` -- ``make(n=3, *, tick_timeout=1.0, data_dirs=None, base=1, control=False,
**NodeConfig fields) -> Cluster`` (:class:`confd_ha.emulator.runner.Cluster`): started nodes
on 127.0.0.base … base+n-1 with one HA port; ``data_dirs=True`` gives each node a directory
under ``tmp_path``. ``cluster.form(token)`` makes node 0 primary and the others its
secondaries through the real client::

    def test_failover(ha_cluster):
        c = ha_cluster(3, tick_timeout=0.3)
        c.form("tok")
        c[0].kill()
        c[1].wait_state(ha.STATE_NONE)

``ha_emulator`` -- the :class:`~confd_ha.emulator.runner.EmulatorThread` the fixtures above
share (one loop thread per test).

``ha_node_process_factory`` -- ``make(*extra_args, address=None, tick_timeout=1.0,
data_dir=None, ready_timeout=20, ha_port=None) -> EmulatorProcess``: ``confd-ha emulate`` in a
child process (``--ipc-port 0``, ``--exit-on-stdin-eof``; addresses 127.0.0.1, .2, … sharing
one reserved HA port as for ``ha_node_factory``), returned once it
printed its ready line; it has ``ipc_address``, ``ipc_port``, ``ha_address``, ``ha_port``,
``control`` (endpoint name), ``pid``, ``control(op, **args)``, ``send_signal``,
``terminate()``, ``stderr_text()``. Teardown sends SIGTERM, waits, and kills if needed.
``ha_node_process`` -- one such process.
"""

from __future__ import annotations

import pytest

DEFAULT_TICK = 1.0
_ADDRESS_BLOCK = 8      # addresses on which a factory reserves its HA port up front


class _Addresses:
    """127.0.0.1, .2, … in order of use, with one HA port reserved on all of them (B-12)."""

    def __init__(self):
        self.count = 0
        self.reservation = None

    def next(self) -> str:
        self.count += 1
        if self.count > 254:
            raise RuntimeError("a test can place at most 254 nodes on 127.0.0.x")
        return "127.0.0.%d" % self.count

    def ha_port(self, address: str) -> int:
        from confd_ha.emulator.runner import PortReservation, loopback_addresses

        if self.reservation is None:
            self.reservation = PortReservation(loopback_addresses(_ADDRESS_BLOCK))
        self.reservation.add(address)
        return self.reservation.port

    def close(self) -> None:
        if self.reservation is not None:
            self.reservation.close()


class _NodeFactory:
    def __init__(self, emulator, tmp_path):
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.addresses = _Addresses()
        emulator.add_cleanup(self.addresses.close)

    def __call__(self, name=None, *, address=None, tick_timeout=DEFAULT_TICK, data_dir=None,
                 start=True, control=False, **config):
        if address is None:
            address = self.addresses.next()
        name = name or "node%d" % (self.addresses.count)
        if "ha_port" not in config:
            config["ha_port"] = self.addresses.ha_port(address)
        if data_dir is True:
            data_dir = self.tmp_path / "ha-nodes" / name
        config.setdefault("ipc_port", 0)
        return self.emulator.add_node(
            name=name, ipc_address=address, tick_timeout=tick_timeout,
            data_dir=None if data_dir is None else str(data_dir), start=start, control=control,
            **config)


@pytest.fixture
def ha_emulator():
    """An :class:`~confd_ha.emulator.runner.EmulatorThread` stopped after the test."""
    from confd_ha.emulator.runner import EmulatorThread

    emu = EmulatorThread().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def ha_node_factory(ha_emulator, tmp_path):
    """Factory of started in-process nodes on 127.0.0.1, .2, … sharing one HA port."""
    return _NodeFactory(ha_emulator, tmp_path)


@pytest.fixture
def ha_node(ha_node_factory):
    """One started in-process node (a SyncNode) on 127.0.0.1 with free ports."""
    return ha_node_factory("node")


@pytest.fixture
def ha_cluster(ha_emulator, tmp_path):
    """Factory: ``ha_cluster(n=3, tick_timeout=1.0, data_dirs=None, ...) -> Cluster``."""
    from confd_ha.emulator.runner import Cluster

    clusters = []

    def make(n=3, *, tick_timeout=DEFAULT_TICK, data_dirs=None, **kwargs):
        if data_dirs is True:
            root = tmp_path / ("ha-cluster%d" % len(clusters))
            data_dirs = [root / ("n%d" % (i + 1)) for i in range(n)]
        c = Cluster(n, tick_timeout=tick_timeout, data_dirs=data_dirs, emulator=ha_emulator,
                    **kwargs)
        clusters.append(c)
        return c

    try:
        yield make
    finally:
        for c in reversed(clusters):
            c.stop()


@pytest.fixture
def ha_node_process_factory(tmp_path):
    """Factory of ``confd-ha emulate`` child processes, each returned once ready."""
    from confd_ha.emulator.process import EmulatorProcess

    procs = []
    addresses = _Addresses()

    def make(*extra_args, address=None, tick_timeout=DEFAULT_TICK, data_dir=None,
             ready_timeout=20.0, ha_port=None):
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
def ha_node_process(ha_node_process_factory):
    """One ``confd-ha emulate`` child process on 127.0.0.1 (an EmulatorProcess)."""
    return ha_node_process_factory()
