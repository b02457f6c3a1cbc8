"""``confd-ha demo --agent`` end to end: the story as narrated, exit 0, and nothing left
behind -- no etcd process, thread, fd or file -- also when Ctrl-C lands in the middle (exit
130), a step fails because something interferes (exit 1), or the output is closed (141);
without etcd, one line that says how to install it (exit 2).

Needs etcd (Debian: apt-get install etcd-server) and httpx: the tests skip, saying so, when
either is missing -- unless ``CI`` is set, where that is a failure.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

import confd_ha
from confd_ha import cli
from demo_helpers import InterruptAt, child_pids, leaves_nothing, own_fds, steps  # noqa: F401


def _need(what: str, ok: bool, how: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail("%s is missing (CI is set): %s" % (what, how))
    pytest.skip("%s is missing: %s" % (what, how))


@pytest.fixture
def etcd_and_httpx():
    from confd_ha.testing.etcd import EtcdNotFound, find_etcd

    try:
        find_etcd()
        found = True
    except EtcdNotFound:
        found = False
    _need("etcd", found, "apt-get install etcd-server (or set ETCD=/path/to/etcd)")
    try:
        import httpx  # noqa: F401
        found = True
    except ImportError:
        found = False
    _need("httpx", found, "pip install 'confd-ha[agent]'")


SECRET = "demo-agent-token"
ETCD_TOKEN = re.compile(r"confd-ha-(\d+)-[0-9a-f]{12}")


def etcd_processes(pid: int) -> list:
    """etcd processes started by process ``pid`` (their cluster token names it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"--initial-cluster-token" in argv:
                token = argv[argv.index(b"--initial-cluster-token") + 1].decode()
                m = ETCD_TOKEN.fullmatch(token)
                if m and int(m.group(1)) == pid:
                    found.append(int(entry))
    return found


def etcd_dirs() -> set:
    """The demo's etcd data directories in the temporary directory (other tests' clusters,
    running meanwhile, use other addresses)."""
    found = set()
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        if name.startswith("confd-ha-etcd-"):
            try:
                with open(os.path.join(tmp, name, "m1.log"), "rb") as f:
                    if b"http://127.0.1.1:" in f.read(65536):
                        found.add(name)
            except OSError:
                continue
    return found


@pytest.fixture
def no_etcd_left():
    before = etcd_dirs()
    yield
    assert etcd_processes(os.getpid()) == []
    assert etcd_dirs() <= before


def check_story(narration: str, prefix: str = "127.0.0.", etcd_prefix: str = "127.0.1.") -> None:
    assert SECRET not in narration
    s = steps(narration)
    assert sorted(s) == list(range(1, 10))
    text = {n: "\n".join(lines) for n, lines in s.items()}
    assert re.search(r"-> all three members healthy in [\d.]+ s: http://%s1:\d+, "
                     r"http://%s2:\d+, http://%s3:\d+" % ((re.escape(etcd_prefix),) * 3),
                     text[1])
    assert "-> states: n1 none, n2 none, n3 none" in text[2]
    assert re.search(r"n1 IPC %s1:\d+" % re.escape(prefix), text[2])
    m = re.search(r"-> (n\d) won: its node is primary, (n\d) and (n\d) joined it as "
                  r"secondaries, [\d.]+ s after the agents started", text[4])
    assert m, text[4]
    first = m.group(1)
    probes = re.findall(r"GET /primary: (.*); GET /secondary: (.*)", text[4])[0]
    assert probes[0] == ", ".join("%s %d" % (n, 200 if n == first else 503)
                                  for n in ("n1", "n2", "n3"))
    assert probes[1] == ", ".join("%s %d" % (n, 503 if n == first else 200)
                                  for n in ("n1", "n2", "n3"))
    table = [line for line in s[4] if line.startswith(("NODE", "n1 ", "n2 ", "n3 "))]
    assert table[0].split() == ["NODE", "ROLE", "STATE", "PRIMARY", "HA", "ADDRESS", "API",
                                "HEALTH"]
    for row in table[1:]:
        cols = row.split()
        if cols[0] == first:
            assert cols[1:4] == ["leader", "primary", "-"]
        else:
            assert cols[1:4] == ["-", "secondary", first]
        assert cols[-1] == "ok"
    assert "kill %s's node" % first in s[5][0]
    m = re.search(r"-> automatic failover in ([\d.]+) s: (n\d) is primary", text[5])
    assert m and m.group(2) != first
    assert float(m.group(1)) < 1.0          # the agent of the killed node is alive: < 1 s
    assert "gave up the leader key at once" in text[5]
    assert re.search(r"-> %s's agent made it a secondary of %s in [\d.]+ s"
                     % (first, m.group(2)), text[6])
    assert "switchover --to %s" % first in s[7][0]
    assert re.search(r"-> done in [\d.]+ s: %s is the leader, was %s" % (first, m.group(2)),
                     text[7])
    assert "-> %s is primary" % first in text[7]
    assert re.search(r"-> \d+ samples, none with more than one primary", text[8])
    assert "-> the agents stopped; their leases revoked, no key is left under /confd-ha/demo/" \
        in text[9]
    last = narration.splitlines()[-1]
    assert re.fullmatch(r"Done in [\d.]+ s; every agent, node and etcd member is stopped\.",
                        last)


def test_demo_agent_in_process(etcd_and_httpx, leaves_nothing, no_etcd_left):
    out, err = io.StringIO(), io.StringIO()
    began = time.monotonic()
    rc = cli.main(["demo", "--agent", "--prefix", "127.0.8."], out=out, err=err)
    assert (rc, err.getvalue()) == (0, ""), out.getvalue()
    check_story(out.getvalue(), prefix="127.0.8.")
    assert time.monotonic() - began < 60


def _env() -> dict:
    root = os.path.dirname(os.path.dirname(confd_ha.__file__))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get(
        "PYTHONPATH")])))


def _argv(*args: str) -> list:
    return [sys.executable, "-c", "import sys; del sys.path[0]; from confd_ha.cli import main; "
            "sys.exit(main(sys.argv[1:]))", "demo", "--agent", *args]


def test_demo_agent_as_a_process(etcd_and_httpx, tmp_path):
    p = subprocess.run(_argv("--tick", "0.3"), stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, env=_env(), cwd=tmp_path, timeout=90)
    assert (p.returncode, p.stderr) == (0, ""), p.stdout
    check_story(p.stdout)
    assert "tick timeout 0.3 s" in p.stdout.splitlines()[0]
    assert os.listdir(tmp_path) == []


def test_closed_output_is_141_and_stops_etcd(etcd_and_httpx, tmp_path):
    """`confd-ha demo --agent | head -3`: the pipe closes while etcd runs."""
    p = subprocess.Popen(_argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=_env(), cwd=tmp_path)
    try:
        for _ in range(3):
            p.stdout.readline()
        p.stdout.close()          # as `head -3` exits
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 141
    assert err.decode().splitlines() == ["confd-ha: stopped: the output was closed (broken pipe)"]
    assert etcd_processes(p.pid) == []


def test_sigint_stops_everything(etcd_and_httpx, tmp_path):
    """A real Ctrl-C (SIGINT) while the agents run."""
    p = subprocess.Popen(_argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=_env(), cwd=tmp_path, text=True)
    try:
        seen = []
        while True:
            line = p.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
            if line.startswith(" 5. "):
                break
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert err == "confd-ha: interrupted; every node stopped\n"
    assert "Done in" not in out
    assert etcd_processes(p.pid) == []
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("prefix", [
    "-> all three members healthy",     # etcd runs, nothing else
    "-> health endpoints: n1",          # step 3: agents running, no leader yet
    "-> automatic failover",            # step 5: a node killed
    "9. ",                              # step 9: about to stop the agents
])
def test_ctrl_c_stops_everything(etcd_and_httpx, leaves_nothing, no_etcd_left, prefix):
    out, err = InterruptAt(prefix), io.StringIO()
    rc = cli.main(["demo", "--agent"], out=out, err=err)
    assert out.fired
    assert rc == 130
    assert err.getvalue() == "confd-ha: interrupted; every node stopped\n"
    assert "Done in" not in out.getvalue()


class PauseAt(io.StringIO):
    """When step 7 (the switchover) begins, an operator pauses the cluster behind the demo's
    back (a `pause` key through etcd's JSON gateway): the switchover is refused."""

    def __init__(self):
        super().__init__()
        self.paused = False

    def write(self, text):
        n = super().write(text)
        if text.startswith(" 7. ") and not self.paused:
            url = re.search(r"(http://[\d.]+:\d+),", self.getvalue()).group(1)
            body = json.dumps({"key": base64.b64encode(b"/confd-ha/demo/pause").decode(),
                               "value": base64.b64encode(b'{"by": "test"}').decode()})
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            opener.open(urllib.request.Request(url + "/v3/kv/put", body.encode()),
                        timeout=5).close()
            self.paused = True
        return n


def test_a_failed_step_is_exit_1_and_says_which(etcd_and_httpx, leaves_nothing, no_etcd_left):
    out, err = PauseAt(), io.StringIO()
    rc = cli.main(["demo", "--agent"], out=out, err=err)
    assert out.paused
    assert rc == 1
    assert err.getvalue() == ("confd-ha: demo step 7 (switchover back) failed: the cluster is "
                              "paused: the agents order nothing; resume it first\n")
    assert "Done in" not in out.getvalue()


def test_without_etcd_one_line_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("ETCD", str(tmp_path / "no-etcd-here"))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["demo", "--agent"], out=out, err=err) == 2
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("confd-ha: ")
    assert "apt-get install etcd-server" in lines[0]
