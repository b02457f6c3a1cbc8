"""confd_ha.testing (loop, node, cluster, ports): the loop thread, synchronous node proxies,
clusters and port reservations -- driven through the real client ``confd_ha`` and checked for
leftovers."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import error, events
from confd_ha.testing.cluster import Cluster
from confd_ha.testing.loop import EmulatorStopped, EmulatorThread
from confd_ha.testing.ports import PortReservation, loopback_addresses
from waiting import wait_until


def _fds():
    return set(os.listdir("/proc/self/fd"))


def _threads():
    return {t.ident for t in threading.enumerate()}


@pytest.fixture
def no_leftovers():
    """Fails the test if it leaves a file descriptor or a thread behind (what earlier tests
    left may end meanwhile: only new ones count)."""
    fds, threads = _fds(), _threads()
    yield
    end = time.monotonic() + 2
    while (_fds() - fds or _threads() - threads) and time.monotonic() < end:
        time.sleep(0.02)  # threads that are exiting right now
    assert _threads() - threads == set()
    assert _fds() - fds == set()


def test_thread_lifecycle_and_calls(no_leftovers):
    with EmulatorThread(timeout=5) as emu:
        assert emu.running
        assert emu.call(lambda: threading.current_thread().name) == "confd-ha-emulator"

        async def add(a, b):
            await asyncio.sleep(0)
            return a + b

        assert emu.run(add(2, 3)) == 5
        with pytest.raises(ZeroDivisionError):
            emu.call(lambda: 1 / 0)

        # A timeout cancels the coroutine on the loop.
        cancelled = threading.Event()

        async def slow():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        with pytest.raises(TimeoutError):
            emu.run(slow(), timeout=0.1)
        assert cancelled.wait(2)

        # Blocking on the loop from the loop thread would deadlock: refused.
        async def reenter():
            coro = add(1, 1)
            try:
                emu.run(coro)
            except RuntimeError as exc:
                return str(exc)

        assert "loop thread" in emu.run(reenter())
    assert not emu.running
    with pytest.raises(EmulatorStopped):
        emu.call(lambda: None)
    with pytest.raises(EmulatorStopped):
        emu.start()
    emu.stop()  # idempotent


def test_sync_node_proxy(no_leftovers):
    with EmulatorThread() as emu:
        addr = "127.0.0.61"
        with PortReservation([addr]) as r:
            n = emu.add_node(name="solo", ipc_address=addr, ipc_port=0, ha_port=r.port,
                             tick_timeout=0.5)
            assert n.running and n.state == ha.STATE_NONE and n.state_name == "NONE"
            assert n.ipc_address == addr and n.ipc_port > 0 and n.ha_port == r.port
            assert n.ha_address == addr  # defaults to the IPC address
            txid = n.set("/sys/host", "a")
            assert n.txid == txid and n.get("/sys/host") == "a"
            n.commit([("set", "/sys/x", "1"), ("delete", "/sys/host")])
            assert n.items("/sys") == [("/sys/x", "1")]
            with pytest.raises(ValueError):
                n.set("no-slash", "v")

            # The real client sees the node; the proxy sees what the client did.
            with n.connect_ha("s3cr3t-XYZ") as s:
                assert ha.status(s) == (ha.STATE_NONE, [])
                ha.beprimary(s, "p1")
            assert n.state == ha.STATE_PRIMARY and n.node_id == b"p1"
            assert n.status() == (ha.STATE_PRIMARY, [])

            ev = n.subscribe()
            with ev:
                n.wait_state(ha.STATE_PRIMARY)
                assert n.subscribers == 1
                with n.connect_ha("tok") as s:
                    ha.benone(s)
                ev.settimeout(5)
                assert events.read_notification(ev)["hnot"]["type"] == events.HA_INFO_IS_NONE
            n.set_upgrade(True)
            n.freeze()
            n.partition("127.0.0.62")
            info = n.info()
            assert info["upgrade"] and info["frozen"] and info["partitions"] == ["127.0.0.62"]
            assert info["state_name"] == "NONE" and info["node_id"] == "p1"
            assert "s3cr3t" not in repr(info)
            n.thaw()
            n.heal()
            assert not n.frozen and n.partitions == []
            with pytest.raises(TimeoutError):
                n.wait_state(ha.STATE_PRIMARY, timeout=0.1)

            # Restart keeps the (port-0-chosen) IPC port and the data (B-23).
            port = n.ipc_port
            n.restart(kill=True)
            assert n.ipc_port == port and n.get("/sys/x") == "1" and not n.upgrade
            with n.connect_ha("tok2") as s:
                assert ha.status(s) == (ha.STATE_NONE, [])
            n.kill()
            assert not n.running


def test_phase_zero_node():
    with EmulatorThread() as emu, PortReservation(["127.0.0.63"]) as r:
        n = emu.add_node(ipc_address="127.0.0.63", ipc_port=0, ha_port=r.port, start_phase=0)
        with n.connect_ha("t") as s:
            with pytest.raises(error.Error) as exc:
                ha.beprimary(s, "x")
            assert exc.value.confd_errno == error.ERR_BADSTATE
        n.set_start_phase(1)
        with pytest.raises(ValueError):
            n.set_start_phase(0)
        n.set_start_phase(2)
        with n.connect_ha("t") as s:
            ha.beprimary(s, "x")
        assert n.state == ha.STATE_PRIMARY


def test_cluster_of_three_through_the_real_client(no_leftovers):
    with Cluster(3, tick_timeout=0.5, base=71) as c:
        assert c.addresses == ["127.0.0.71", "127.0.0.72", "127.0.0.73"]
        assert {n.ha_port for n in c} == {c.ha_port}
        assert len({n.ipc_port for n in c}) == 3
        with c[0].connect_ha("tok") as s:
            ha.beprimary(s, "n1")
        for i in (1, 2):
            with c[i].connect_ha("tok") as s:
                ha.besecondary(s, "n%d" % (i + 1), "n1", "127.0.0.71", 1)
                assert ha.status(s) == (ha.STATE_SECONDARY,
                                        [{"nodeid": "n1", "address": "127.0.0.71"}])
        # the primary lists them once it processed "synced" (B-24)
        wait_until(lambda: len(c[0].status()[1]) >= 2, interval=0.01)
        with c[0].connect_ha("tok") as s:
            state, nodes = ha.status(s)
        assert state == ha.STATE_PRIMARY
        assert sorted((d["nodeid"], d["address"]) for d in nodes) == [
            ("n2", "127.0.0.72"), ("n3", "127.0.0.73")]
        assert c.primary() is c[0]
        txid = c[0].set("/a", "1")  # returns once both secondaries acknowledged (B-30)
        assert [n.get("/a") for n in c] == ["1", "1", "1"] and c[2].txid == txid
        with pytest.raises(error.Error) as exc:
            c[1].set("/a", "2")
        assert exc.value.confd_errno == error.ERR_BADSTATE
        roles = sorted(p["role"] for p in c[1].peers)
        assert roles == ["primary"]
        c[0].kill()
        c[1].wait_state(ha.STATE_NONE, timeout=5)
        c[2].wait_state(ha.STATE_NONE, timeout=5)
        assert c.primary() is None
    assert not c.emulator.running  # and no_leftovers: every socket, the reservation's too


def test_cluster_form_and_data_dirs(tmp_path, no_leftovers):
    dirs = [tmp_path / ("d%d" % i) for i in range(2)]
    with Cluster(2, tick_timeout=0.5, base=74, data_dirs=dirs, names=["a", "b"]) as c:
        c.form("tok")
        assert c[1].status()[1][0][0] == b"a"
        c[0].set("/k", "v")
    assert (dirs[1] / "journal").exists()
    with Cluster(2, tick_timeout=0.5, base=74, data_dirs=dirs) as c:
        assert c[1].get("/k") == "v"  # replicated and journaled before the commit returned


def test_cleanup_on_exception_and_ctrl_c(no_leftovers):
    for exc_type in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(exc_type):
            with Cluster(2, tick_timeout=0.5, base=76) as c:
                c.form("tok")
                raise exc_type()
        assert not c.emulator.running and not c[0].node.running


def test_failed_start_cleans_up(no_leftovers):
    blocker = socket.socket()
    blocker.bind(("127.0.0.78", 0))
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(OSError):
            with EmulatorThread() as emu:
                emu.add_node(ipc_address="127.0.0.78", ipc_port=port, ha_port=port + 1)
    finally:
        blocker.close()


def test_shared_thread_cluster_stop_leaves_thread_running(no_leftovers):
    with EmulatorThread() as emu:
        c1 = Cluster(2, tick_timeout=0.5, base=79, emulator=emu)
        c2 = Cluster(2, tick_timeout=0.5, base=79, emulator=emu)  # same addresses,
        assert c1.ha_port != c2.ha_port                           # distinct HA ports
        c1.form("t")
        c2.form("t")
        c1.stop()
        assert emu.running and not c1[0].running and c2[0].state == ha.STATE_PRIMARY
    assert not c2[0].node.running


def test_port_reservation():
    addrs = loopback_addresses(3, base=81)
    with PortReservation(addrs) as r:
        port = r.port
        for a in addrs:  # nothing else can bind it, not even a second reservation
            s = socket.socket()
            with pytest.raises(OSError):
                s.bind((a, port))
            s.close()
        with pytest.raises(OSError):
            PortReservation(addrs, port=port)
        # ... but a listener with SO_REUSEADDR (the emulated node's) can.
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind((addrs[0], port))
        lst.listen()
        lst.close()
        r.add("127.0.0.84")
        assert r.addresses[-1] == "127.0.0.84"
    with pytest.raises(ValueError):
        loopback_addresses(3, base=253)
    with pytest.raises(ValueError):
        PortReservation([])
