"""``confd-ha agent`` as a user runs it: three ``agent run`` processes (one with a TOML file,
two with options), three emulated nodes (in this process), a three-member etcd on loopback,
and the operator's actions as processes -- the ready line, ``list``, the health endpoint,
``switchover``, ``pause``/``resume``, a stop by SIGTERM and by SIGINT that demotes the
primary and revokes the lease at once, and a node with the wrong token (exit 1, saying why).
The token is in no output and no argv. Node states are read from the emulator, never through
an HA socket.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from confd_ha.testing.etcd import EtcdCluster
from waiting import wait_until

if not os.environ.get("CI"):
    pytest.importorskip("httpx", reason="the agent needs httpx: pip install 'confd-ha[agent]'")

ETCD_PREFIX = "127.84.0."   # the etcd fixture's addresses (conftest.py)
TOKEN = "cli-agent-t0ken-Zq9"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRIMARY, SECONDARY, NONE = 3, 2, 1


def command() -> list:
    return [sys.executable, "-c", "import sys; del sys.path[0]; from confd_ha.cli import main; "
            "sys.exit(main(sys.argv[1:]))"]


def env(token: str = TOKEN) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("CONFD_", "NCS_"))}
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    e["CONFD_HA_TOKEN"] = token
    return e


@pytest.fixture
def nodes():
    from confd_ha.testing.cluster import Cluster

    with Cluster(3, prefix="127.84.1.", tick_timeout=0.5) as c:
        yield c


class Agents:
    """The ``agent run`` processes of one test, stopped (SIGKILL at worst) at the end."""

    def __init__(self, etcd: EtcdCluster, nodes, cluster: str, tmp_path) -> None:
        self.etcd, self.nodes, self.cluster, self.tmp = etcd, nodes, cluster, tmp_path
        self.procs: dict = {}
        self.ready: dict = {}

    def where(self) -> list:
        return ["--cluster", self.cluster, "--etcd", ",".join(self.etcd.endpoints)]

    def start(self, i: int, token: str = TOKEN, config: bool = False) -> dict:
        node = self.nodes[i]
        name = "n%d" % (i + 1)
        settings = {"node_id": name, "ipc_address": node.ipc_address,
                    "ipc_port": node.ipc_port, "api_address": node.ipc_address, "api_port": 0,
                    "ttl": 3, "loop_wait": 0.5, "order_timeout": 0.5}
        if config:   # a TOML file with a token_file; cluster and etcd from the options
            token_file = self.tmp / ("%s.token" % name)
            token_file.write_text(token + "\n")
            lines = ["%s = %s" % (k, json.dumps(v)) for k, v in settings.items()]
            lines.append("token_file = %s" % json.dumps(str(token_file)))
            path = self.tmp / ("%s.toml" % name)
            path.write_text("\n".join(lines) + "\n")
            argv = ["agent", "run", "--config", str(path)]
        else:
            argv = ["agent", "run", "--node-id", name, "--ipc-address", node.ipc_address,
                    "--ipc-port", str(node.ipc_port), "--api-address", node.ipc_address,
                    "--api-port", "0", "--ttl", "3", "--loop-wait", "0.5",
                    "--order-timeout", "0.5"]
        p = subprocess.Popen(command() + argv + self.where() + ["--json"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env(token), text=True)
        self.procs[name] = p
        line = p.stdout.readline()
        assert line, p.stderr.read()
        ready = json.loads(line)
        self.ready[name] = ready
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            assert TOKEN.encode() not in f.read()
        return ready

    def op(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        p = subprocess.run(command() + ["agent", *argv] + self.where(), env=env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        assert TOKEN not in p.stdout + p.stderr and "Traceback" not in p.stderr
        return p

    def view(self) -> dict:
        p = self.op("list", "--json")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> tuple:
        p = self.procs.pop(name)
        p.send_signal(sig)
        out, err = p.communicate(timeout=timeout)
        assert TOKEN not in out + err and "Traceback" not in err
        return p.returncode, out, err

    def close(self) -> None:
        for name in list(self.procs):
            try:
                self.stop(name)
            except subprocess.TimeoutExpired:
                p = self.procs.pop(name, None)
                if p is not None:
                    p.kill()
                    p.communicate()


def wait(what: str, cond, timeout: float = 20.0):
    """``wait_until`` that names what it waited for when it fails."""
    try:
        return wait_until(cond, timeout, interval=0.05)
    except AssertionError:
        raise AssertionError("not within %s s: %s" % (timeout, what)) from None


def formed(view: dict, names=("n1", "n2", "n3")):
    """The leader's name when it is primary and the others are its secondaries."""
    leader = (view.get("leader") or {}).get("node")
    states = {m["node"]: (m["state"], m["primary"]) for m in view["members"]}
    if leader is None or states.get(leader, ("",))[0] != "primary":
        return None
    if any(states.get(n) != ("secondary", leader) for n in names if n != leader):
        return None
    return leader


def get(url: str, path: str) -> int:
    host, port = url[len("http://"):].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture
def agents(etcd, nodes, tmp_path, request):
    a = Agents(etcd, nodes, "cli%d" % (abs(hash(request.node.name)) % 10000), tmp_path)
    yield a
    a.close()


def test_run_list_switchover_pause_and_stop(agents, nodes):
    ready = agents.start(0, config=True)
    assert ready["ready"] is True and ready["node"] == "n1"
    assert ready["cluster"] == agents.cluster and ready["etcd"] == agents.etcd.endpoints
    assert ready["api"].startswith("http://127.84.1.1:")
    agents.start(1)
    agents.start(2)
    leader = wait("the cluster forms", lambda: formed(agents.view()))
    codes = {n: get(r["api"], "/primary") for n, r in agents.ready.items()}
    assert codes == {n: 200 if n == leader else 503 for n in codes}
    assert all(get(r["api"], "/secondary") == (503 if n == leader else 200)
               for n, r in agents.ready.items())

    text = agents.op("list").stdout.splitlines()
    assert text[0] == "cluster %s, leader %s (since %s), not paused" % (
        agents.cluster, leader, agents.view()["leader"]["since"])
    assert text[1].split()[:3] == ["NODE", "ROLE", "STATE"]

    target = "n2" if leader != "n2" else "n3"
    p = agents.op("switchover", "--to", target, "--json")
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert (result["kind"], result["leader"], result["to"], result["from"]) == (
        "switchover", target, target, leader)
    leader = wait("the others follow %s" % target, lambda: formed(agents.view()))
    assert leader == target

    p = agents.op("pause")
    assert (p.returncode, p.stdout) == (0, "cluster %s paused: the agents order nothing until "
                                           "`confd-ha agent resume`\n" % agents.cluster)
    assert agents.view()["paused"] is True
    p = agents.op("switchover", "--to", "n1")
    assert p.returncode == 1 and "the cluster is paused" in p.stderr
    assert agents.op("resume", "-q").stdout == ""
    assert agents.view()["paused"] is False

    # SIGTERM to the leader's agent: its node is demoted, its keys go at once (the lease is
    # revoked, not left to expire), another node takes over.
    began = time.monotonic()
    code, out, err = agents.stop(leader)
    assert code == 0 and out == "", err
    assert "SIGTERM: stopping" in err and "agent %s stopped" % leader in err
    index = int(leader[1:]) - 1
    assert nodes[index].state == NONE
    view = agents.view()
    assert leader not in [m["node"] for m in view["members"]]
    assert time.monotonic() - began < 3          # less than the 3 s TTL
    rest = [n for n in ("n1", "n2", "n3") if n != leader]
    wait("a new leader among %s" % rest,
         lambda: formed(agents.view(), rest) in rest)

    code, _out, err = agents.stop(rest[0], signal.SIGINT)
    assert code == 0 and "SIGINT: stopping" in err
    code, _out, err = agents.stop(rest[1])
    assert code == 0
    assert agents.view()["members"] == [] and agents.view()["leader"] is None


def test_a_node_with_the_wrong_token_stops_its_agent(agents, nodes):
    agents.start(0)
    agents.start(1)
    wait("n1 and n2 form", lambda: formed(agents.view(), ("n1", "n2")))
    agents.start(2, token="not-the-cluster-token")
    p = agents.procs["n3"]
    out, err = p.communicate(timeout=30)
    del agents.procs["n3"]
    assert p.returncode == 1, err
    last = err.splitlines()[-1]
    assert last.startswith("confd-ha: the agent stopped: the primary refused this node's HA "
                           "token"), err
    assert "not-the-cluster-token" not in out + err
    assert nodes[2].state != PRIMARY
