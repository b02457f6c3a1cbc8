"""``confd-ha demo`` end to end: in-process through ``confd_ha.cli.main`` and once as a
process. The narration must show each observation of the story, the run must end with exit
0, and nothing may be left behind -- also when Ctrl-C lands in the middle (exit 130) or a
step fails because something outside the demo interferes (exit 1).
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time

import pytest

import confd_ha
import confd_ha as ha
from confd_ha import cli

from demo_helpers import InterruptAt, child_pids, leaves_nothing, own_fds, steps  # noqa: F401

SECRET = "demo-token"


def check_story(narration: str) -> None:
    assert SECRET not in narration
    s = steps(narration)
    assert sorted(s) == list(range(1, 11))
    text = {n: "\n".join(lines) for n, lines in s.items()}
    assert "-> states: n1 none, n2 none, n3 none" in text[1]
    assert "-> n1 event: IS_PRIMARY; n1 is now primary" in text[2]
    assert "-> n2 event: SECONDARY_INITIALIZED cdb_initialized_by_copy=1" in text[3]
    assert "-> n1 event: SECONDARY_ARRIVED n2 from 127.0.0.2" in text[3]
    assert "waitreply=0" in s[4][0]
    # ConfD 8.2.5: an asynchronous join's result comes before SECONDARY_INITIALIZED.
    assert text[4].index("-> n3 event: BESECONDARY_RESULT 0 (ok)") < \
        text[4].index("-> n3 event: SECONDARY_INITIALIZED cdb_initialized_by_copy=1")
    assert "-> n1 event: SECONDARY_ARRIVED n3 from 127.0.0.3" in text[4]
    # Step 5: the transaction committed on n1 is the one both secondaries report.
    txid = re.search(r"n1 committed transaction (\S+)", text[5]).group(1)
    for name in ("n2", "n3"):
        assert '-> %s reads /demo/greeting = "hello from n1", transaction %s' % (name, txid) \
            in text[5]
    assert ("-> refused: error 17 ERR_BADSTATE: operation in wrong state: node is an HA "
            "secondary: writes are not allowed") in text[6]
    for name in ("n2", "n3"):
        assert ("-> %s events: NOPRIMARY reason ERR_HA_CLOSED (26), then IS_NONE; %s is now none"
                % (name, name)) in text[7]
    assert "-> n2 event: IS_PRIMARY; n2 is now primary" in text[8]
    assert "-> n3 event: SECONDARY_INITIALIZED cdb_initialized_by_copy=1" in text[9]
    assert "-> no data was lost: n2 and n3 were, and are, both at transaction %s" % txid in text[9]
    assert "-> n2 event: SECONDARY_ARRIVED n3 from 127.0.0.3" in text[9]
    final = s[10][1:]
    assert re.fullmatch(r"n1 \(IPC 127\.0\.0\.1:\d+\): not running \(killed in step 7\)",
                        final[0])
    assert re.fullmatch(r"n2 \(IPC 127\.0\.0\.2:\d+\):", final[1])
    assert final[2:5] == ["state: primary (3)", "NODE ID  ADDRESS", "n3       127.0.0.3"]
    assert re.fullmatch(r"n3 \(IPC 127\.0\.0\.3:\d+\):", final[5])
    assert final[6:9] == ["state: secondary (2)", "NODE ID  ADDRESS", "n2       127.0.0.2"]
    assert final[9].startswith("Done in ")


def test_demo_in_process(leaves_nothing):
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    rc = cli.main(["demo"], out=out, err=err)
    elapsed = time.monotonic() - start
    assert (rc, err.getvalue()) == (0, "")
    check_story(out.getvalue())
    assert elapsed < 30


def test_demo_as_a_process(tmp_path):
    root = os.path.dirname(os.path.dirname(confd_ha.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get(
        "PYTHONPATH")])))
    start = time.monotonic()
    # communicate() (inside run) returns only at EOF on both pipes: a left-over process
    # holding them would make this time out.
    p = subprocess.run([sys.executable, "-c", "import sys; del sys.path[0]; from confd_ha.cli import main; "
                        "sys.exit(main(sys.argv[1:]))", "demo", "--tick", "0.3"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=60)
    assert (p.returncode, p.stderr) == (0, "")
    check_story(p.stdout)
    assert "tick timeout 0.3 s" in p.stdout
    assert time.monotonic() - start < 30
    assert os.listdir(tmp_path) == []




@pytest.mark.parametrize("prefix", [
    "-> n1 IPC",                 # step 1: nodes running, sockets being set up
    "-> the call returned at once",   # step 4: n3's asynchronous join under way
    "9. ",                       # step 9: n3 about to re-point
])
def test_ctrl_c_stops_everything(leaves_nothing, prefix):
    out, err = InterruptAt(prefix), io.StringIO()
    rc = cli.main(["demo"], out=out, err=err)
    assert out.fired
    assert rc == 130
    assert err.getvalue() == "confd-ha: interrupted; every node stopped\n"
    assert "Done in" not in out.getvalue()


class Interfere(io.StringIO):
    """Narration output that, when step 3 begins, does what ha-behaviour.md §14.3 warns about: a monitoring
    script opens its own HA control socket to n2 (port read from step 1's narration),
    which closes the demo's socket to n2."""

    def __init__(self):
        super().__init__()
        self.sock = None

    def write(self, text):
        n = super().write(text)
        if text.startswith(" 3. ") and self.sock is None:
            port = int(re.search(r"n2 IPC 127\.0\.0\.2:(\d+)", self.getvalue()).group(1))
            self.sock = socket.socket()
            self.sock.settimeout(5)
            ha.connect(self.sock, "monitor", "127.0.0.2", port)
            ha.status(self.sock)  # answered: the new socket is now n2's control socket
        return n


def test_failed_step_is_exit_1_and_says_which(leaves_nothing):
    out, err = Interfere(), io.StringIO()
    try:
        rc = cli.main(["demo"], out=out, err=err)
    finally:
        if out.sock is not None:
            out.sock.close()
    assert rc == 1
    message = err.getvalue()
    assert message.startswith("confd-ha: demo step 3 (n2 joins synchronously) failed: EOF")
    assert len(message.splitlines()) == 1
    assert SECRET not in message and SECRET not in out.getvalue()
    assert "Done in" not in out.getvalue()


def test_bad_tick_is_a_usage_error():
    out, err = io.StringIO(), io.StringIO()
    for bad in ("0", "-1", "nan", "inf", "61"):
        err = io.StringIO()
        assert cli.main(["demo", "--tick", bad], out=out, err=err) == 2
        assert err.getvalue() == ("confd-ha: --tick: '%s' is not a tick timeout (more than 0, "
                                  "at most 60 seconds) (see `confd-ha demo --help`)\n" % bad)
    assert out.getvalue() == ""
    assert cli.main(["demo", "--tick", "fast"], out=out, err=err) == 2
