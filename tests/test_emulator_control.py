"""The emulated node's control endpoint (ha-behaviour B-33) under bad requests, through a real
AF_UNIX socket and the project's ControlClient.
"""

from __future__ import annotations

import socket

import pytest

from confd_ha.emulator.control import ControlServer
from confd_ha.testing.control import ControlClient
from emulator_helpers import Cluster
from ipc_helpers import json_exchange


@pytest.fixture
def endpoint(tmp_path):
    """A node and its control endpoint on a filesystem socket: (cluster, path)."""
    c = Cluster()
    n1 = c.add("n1", 1)
    path = str(tmp_path / "ctl.sock")
    server = c.lt.call(ControlServer, n1.node, path)
    c.lt.run(server.start())
    yield c, path
    c.lt.run(server.stop())
    c.close()


def request_line(path: str, line: bytes, timeout: float = 2.0) -> dict:
    """Send one raw request line; return the decoded reply (fails on a close instead)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        reply = json_exchange(s, line)
        # The same connection keeps working after the bad request.
        info = json_exchange(s, b'{"op":"info","decisions":0,"id":7}\n')
        assert info["ok"] is True and info["id"] == 7 and info["result"]["name"] == "n1"
        return reply
    finally:
        s.close()


@pytest.mark.parametrize("line", [
    b"[" * 200_000 + b"\n",                                   # nesting beyond the parser's stack
    b'{"op":"info","x":' + b"[" * 200_000 + b"]" * 200_000 + b"}\n",
    b'{"op":"info","id":' + b"{\"a\":" * 100_000 + b"1" + b"}" * 100_000 + b"}\n",
    b"\xff\xfe{}\n",                                          # not UTF-8
    b'{"op": "info"\n',                                       # truncated
], ids=["deep-list", "deep-argument", "deep-id", "not-utf8", "truncated"])
def test_unparsable_request_is_a_bad_request_and_the_connection_stays(endpoint, line):
    _, path = endpoint
    reply = request_line(path, line)
    assert reply["ok"] is False and reply["error"]["kind"] == "bad-request", reply


def test_ordinary_requests_still_work(endpoint):
    _, path = endpoint
    with ControlClient(path=path, timeout=2.0) as cl:
        assert cl.request("info")["state_name"] == "NONE"
        cl.request("set", path="/x", value="1")
        assert cl.request("get", path="/x")["value"] == "1"
