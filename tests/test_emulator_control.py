"""The emulated node's control endpoint (ha-behaviour B-33) under bad requests, through a real
AF_UNIX socket and the project's ControlClient.
"""

from __future__ import annotations

import json
import socket

import pytest

from confd_ha.emulator.control import ControlClient, ControlServer
from emulator_helpers import Cluster


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
        s.sendall(line)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            assert chunk, "connection closed without a reply"
            buf += chunk
        # The same connection keeps working after the bad request.
        s.sendall(b'{"op":"info","decisions":0,"id":7}\n')
        rest = b""
        while not rest.endswith(b"\n"):
            chunk = s.recv(65536)
            assert chunk, "connection closed after the bad request"
            rest += chunk
        info = json.loads(rest)
        assert info["ok"] is True and info["id"] == 7 and info["result"]["name"] == "n1"
        return json.loads(buf)
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
