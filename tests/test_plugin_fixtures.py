"""The pytest plugin (``confd_ha.testing.pytest_plugin``): its fixtures used directly, and the plugin
loaded into an inner pytest run (``pytester``), which must leave nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import error
from confd_ha.testing.control import ControlError
from confd_ha.testing.process import package_env
from confd_ha.testing import pytest_plugin
from waiting import wait_until

# The fixtures, whether or not the plugin is installed (an installed plugin provides the same
# functions; these module-level names then simply take precedence).
ha_emulator = pytest_plugin.ha_emulator
ha_node_factory = pytest_plugin.ha_node_factory
ha_node = pytest_plugin.ha_node
ha_cluster = pytest_plugin.ha_cluster
ha_node_process_factory = pytest_plugin.ha_node_process_factory
ha_node_process = pytest_plugin.ha_node_process

pytest_plugins = ["pytester"]


def _children() -> set:
    pids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % tid) as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def test_ha_node(ha_node):
    assert ha_node.ipc_address == "127.0.0.1" and ha_node.ipc_port > 0
    assert ha_node.ha_port not in (4569, 4570) and ha_node.config.tick_timeout == 1.0
    with ha_node.connect_ha("t") as s:
        ha.beprimary(s, "solo")  # the reserved HA port is bindable by the node
        assert ha.status(s) == (ha.STATE_PRIMARY, [])


def test_ha_node_factory_nodes_can_join(ha_node_factory, tmp_path):
    a = ha_node_factory("a", data_dir=True)
    b = ha_node_factory("b", tick_timeout=0.5)
    assert (a.ipc_address, b.ipc_address) == ("127.0.0.1", "127.0.0.2")
    assert a.ha_port == b.ha_port
    assert a.config.data_dir == str(tmp_path / "ha-nodes" / "a")
    with a.connect_ha("t") as s:
        ha.beprimary(s, "a")
    with b.connect_ha("t") as s:
        ha.besecondary(s, "b", "a", a.ipc_address, 1)
    # The primary lists b once it has processed b's "synced" (B-24); only then does a
    # commit wait for b (B-30).
    wait_until(lambda: a.status()[1])
    a.set("/x", "1")
    assert b.get("/x") == "1"
    c = ha_node_factory(start=False)
    assert not c.running and c.ipc_address == "127.0.0.3"


def test_ha_cluster_factory(ha_cluster):
    c = ha_cluster(3, tick_timeout=0.3, data_dirs=True)
    c.form("tok")
    c2 = ha_cluster(2)  # a second cluster in the same test: its own HA port
    assert c2.ha_port != c.ha_port and len(c2) == 2
    c[0].kill()
    for n in c[1:]:
        n.wait_state(ha.STATE_NONE)
    with c[1].connect_ha("tok") as s:
        ha.beprimary(s, "n2")
    with c[2].connect_ha("tok") as s:
        ha.besecondary(s, "n3", "n2", c[1].ipc_address, 1)
        assert ha.status(s)[1] == [{"nodeid": "n2", "address": c[1].ipc_address}]


def test_ha_node_process(ha_node_process):
    p = ha_node_process
    s = socket.socket()
    s.settimeout(5)
    with s:
        ha.connect(s, "t", p.ipc_address, p.ipc_port)
        ha.beprimary(s, "proc")
    assert p.control("info")["state_name"] == "PRIMARY"


def test_ha_node_process_factory_cluster(ha_node_process_factory):
    p1 = ha_node_process_factory(tick_timeout=0.5)
    p2 = ha_node_process_factory("--name", "second", tick_timeout=0.5)
    assert (p1.ipc_address, p2.ipc_address) == ("127.0.0.1", "127.0.0.2")
    assert p1.ha_port == p2.ha_port
    for p, fn in ((p1, lambda s: ha.beprimary(s, "p1")),
                  (p2, lambda s: ha.besecondary(s, "p2", "p1", p1.ipc_address, 1))):
        with socket.socket() as s:
            s.settimeout(5)
            ha.connect(s, "t", p.ipc_address, p.ipc_port)
            fn(s)
    wait_until(lambda: p1.control("info")["status"])  # p2 arrived (B-24, B-30)
    p1.control("set", path="/k", value="v")
    assert p2.control("get", path="/k")["value"] == "v"
    with pytest.raises(ControlError) as exc:
        p2.control("set", path="/k", value="w")
    assert (exc.value.kind, exc.value.code) == ("refused", error.ERR_BADSTATE)


def test_import_is_cheap_and_side_effect_free():
    code = ("import sys, threading; del sys.path[0]; import confd_ha.testing.pytest_plugin; "
            "assert not [m for m in sys.modules if m.startswith('confd_ha.emulator')], 'emulator'; "
            "assert threading.active_count() == 1, 'threads'")
    subprocess.run([sys.executable, "-c", code], env=package_env(), check=True, timeout=30)


INNER = '''
import signal, socket
import confd_ha as ha

def test_inner_node(ha_node):
    with ha_node.connect_ha("t") as s:
        ha.beprimary(s, "x")

def test_inner_cluster(ha_cluster):
    ha_cluster(3, tick_timeout=0.5).form("t")

def test_inner_process(ha_node_process_factory):
    p = ha_node_process_factory()
    assert p.control("info")["running"]

def test_inner_failure_still_cleans_up(ha_cluster, ha_node_process):
    ha_cluster(2).form("t")
    assert False, "deliberate"
'''


def test_plugin_in_an_inner_run_leaves_nothing(pytester, request):
    pytester.makepyfile(test_inner=INNER)
    args = ["-q", "-p", "no:cacheprovider"]
    if request.config.pluginmanager.get_plugin("confd_ha") is None:
        args += ["-p", "confd_ha.testing.pytest_plugin"]  # not installed: load it by module name
    fds = set(os.listdir("/proc/self/fd"))
    threads = {t.ident for t in threading.enumerate()}
    children = _children()
    result = pytester.runpytest_inprocess(*args)
    result.assert_outcomes(passed=3, failed=1)

    # Nothing new may remain (things of earlier tests may have ended meanwhile).
    def new_things():
        return ({t.ident for t in threading.enumerate()} - threads, _children() - children,
                set(os.listdir("/proc/self/fd")) - fds)

    end = time.monotonic() + 3
    while any(new_things()) and time.monotonic() < end:
        time.sleep(0.02)
    assert new_things() == (set(), set(), set())


def test_process_fixture_kills_a_stuck_child(ha_node_process_factory):
    p = ha_node_process_factory()
    os.kill(p.pid, signal.SIGSTOP)  # it cannot react to SIGTERM now
    t = time.monotonic()
    assert p.terminate(timeout=0.3) == -signal.SIGKILL
    assert time.monotonic() - t < 5


class TestAnotherAddressPrefix:
    """Overriding ``ha_address_prefix`` moves every fixture's nodes (docs/emulator.md)."""

    @pytest.fixture
    def ha_address_prefix(self):
        return "127.0.13."

    def test_nodes_follow_the_prefix(self, ha_node, ha_node_factory, ha_cluster):
        assert ha_node.ipc_address == "127.0.13.1"
        assert ha_node_factory().ipc_address == "127.0.13.2"
        c = ha_cluster(2, tick_timeout=0.3)
        assert c.addresses == ["127.0.13.1", "127.0.13.2"]
        c.form("tok")
        assert c[1].state == ha.STATE_SECONDARY
        assert ha_cluster(1, prefix="127.0.14.", base=3).addresses == ["127.0.14.3"]

    def test_a_prefix_that_makes_no_address_is_refused(self, ha_cluster):
        with pytest.raises(ValueError, match="not an address prefix"):
            ha_cluster(1, prefix="127.0.0")
        with pytest.raises(ValueError, match="not an address prefix"):
            pytest_plugin.check_prefix("host.example.")
