"""confd_ha.connect against a scripted fake daemon: hello, token, transports, defaults, IPC
access check (v1/v2), hello reply statuses and version renegotiation (wire-protocol §3, §4, §6.1).
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import socket
import struct
import time

import pytest

import confd_ha as ha
from confd_ha import _handshake, error
from fakedaemon import (  # noqa: F401 -- fixtures
    SECRET, SPEC, TOKEN, TOKEN_BYTES, clean_client_env, close, expect, expect_frame,
    ha_connected, hello_bytes, hello_reply, mark, raises, send, sleep, token_never_logged,
    use_access_file,
)
from net_helpers import dead_port

FAMILIES = ["inet", "inet6", "unix"]


def connect(d, sock=None, token=TOKEN, **kw):
    s = sock if sock is not None else d.client_socket()
    ha.connect(s, token, **{**d.where, **kw})
    return s


# ---------------------------------------------------------------- hello and token


@pytest.mark.parametrize("family", FAMILIES)
def test_hello_token_and_status_on_each_transport(daemons, family):
    d = daemons([ha_connected(), expect_frame("order"), send(SPEC["status_secondary"])],
                family=family)
    s = connect(d)
    assert ha.status(s) == (2, [{"nodeid": "n1", "address": "10.0.0.1"}])
    s.close()
    (rec,) = d.finish()
    assert rec["hello"] == SPEC["hello"] == bytes.fromhex("110052080205001409")
    assert rec["token"] == struct.pack(">I", len(TOKEN_BYTES)) + TOKEN_BYTES
    assert rec["order"] == SPEC["getstatus"]
    assert rec.extra == b""


def test_token_frame_is_length_and_raw_utf8_bytes_without_nul(daemons):
    d = daemons(ha_connected())
    s = connect(d, token="abc")
    s.close()
    (rec,) = d.finish()
    assert rec["token"] == SPEC["token_abc"]
    assert bytes(rec.all) == SPEC["hello"] + SPEC["token_abc"]


def test_token_non_ascii_is_utf8(daemons):
    d = daemons(ha_connected())
    s = connect(d, token="n\u00e6ste-\u03bb")
    s.close()
    (rec,) = d.finish()
    raw = "n\u00e6ste-\u03bb".encode("utf-8")
    assert rec["token"] == struct.pack(">I", len(raw)) + raw
    assert b"\x00" not in rec["token"][4:]


def test_empty_token(daemons):
    d = daemons(ha_connected())
    s = connect(d, token="")
    s.close()
    assert d.finish()[0]["token"] == b"\x00\x00\x00\x00"


def test_connect_reads_nothing_after_the_token(daemons):
    """The daemon sends nothing after the token; connect must return at once, without
    waiting for (or consuming) anything. The next status() then gets the whole reply."""
    d = daemons([ha_connected(), sleep(0.3), mark("quiet"), expect_frame("order"),
                 send(SPEC["status_none"])])
    s = d.client_socket(timeout=1.0)
    ha.connect(s, TOKEN, **d.where)
    returned = time.monotonic()
    assert ha.status(s) == (1, [])
    s.close()
    (rec,) = d.finish()
    # connect returned while the daemon was still sitting quiet after the token.
    assert returned < rec.times["quiet"]
    assert rec["order"] == SPEC["getstatus"]


def test_token_bytes_accepted(daemons):
    d = daemons(ha_connected())
    s = connect(d, token=b"raw\xfftoken")
    s.close()
    assert d.finish()[0]["token"] == b"\x00\x00\x00\x09raw\xfftoken"


def test_token_wrong_type(daemons):
    d = daemons([])
    s = d.client_socket()
    e = raises(TypeError, ha.connect, s, 1234, **d.where)
    assert str(e) == "argument 2 must be str, not int"      # Cisco's words
    assert d.conns == []                                    # refused before connecting


def test_connect_rejects_non_socket():
    with pytest.raises(AttributeError, match="'str' object has no attribute 'fileno'"):
        ha.connect("not a socket", TOKEN, "127.0.0.1", 1)
    with pytest.raises(AttributeError):
        ha.connect(3, TOKEN, "127.0.0.1", 1)


def test_connect_refused_is_os_error():
    port = dead_port()
    c = socket.socket()
    c.settimeout(1.0)
    try:
        e = raises(error.Error, ha.connect, c, TOKEN, "127.0.0.1", port)
    finally:
        c.close()
    assert e.confd_errno == error.ERR_OS == 24
    assert e.errno == errno.ECONNREFUSED
    assert str(e) == "system call failed (24): Failed to connect to ConfD: Connection refused"


def test_unix_socket_requires_pstr(daemons):
    d = daemons([], family="unix")
    s = d.client_socket()
    with pytest.raises(TypeError, match="^path argument must be provided for an AF_UNIX socket$"):
        ha.connect(s, TOKEN)


def test_already_connected_socket_is_refused_and_stays_usable(daemons):
    # As Cisco's module: connect() on a connected socket is ERR_OS/EISCONN at once, and the
    # socket keeps its connection.
    d = daemons([ha_connected(), expect_frame("order"), send(SPEC["reply_ok"])])
    s = d.client_socket()
    ha.connect(s, TOKEN, **d.where)
    e = raises(error.Error, ha.connect, s, TOKEN, **d.where)
    assert (e.confd_errno, e.errno) == (error.ERR_OS, errno.EISCONN)
    assert str(e) == ("system call failed (24): Failed to connect to ConfD: "
                      "Transport endpoint is already connected")
    ha.benone(s)
    s.close()
    (rec,) = d.finish()
    assert rec["order"] == SPEC["benone"]
    assert len(d.conns) == 1


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX")
def test_already_connected_unix_socket_is_refused(daemons):
    d = daemons([], family="unix")
    s = d.client_socket()
    s.connect(d.path)
    e = raises(error.Error, ha.connect, s, TOKEN, pstr=d.path)
    assert e.errno == errno.EISCONN
    s.close()


# ---------------------------------------------------------------- ADDR / PORT defaults


def test_target_address_defaults():
    with socket.socket() as s:
        target = _handshake.target_address
        assert target(s, None, None, None, "127.0.0.9", 4711) == ("127.0.0.9", 4711)
        assert target(s, "127.0.0.2", None, None, "x", 4565) == ("127.0.0.2", 4565)
        assert target(s, None, 99, None, "127.0.0.3", 4565) == ("127.0.0.3", 99)


def _reload_with_env(monkeypatch, **env):
    for key in ("CONFD_IPC_ADDR", "CONFD_IPC_PORT"):
        if key in env:
            monkeypatch.setenv(key, env[key])
        else:
            monkeypatch.delenv(key, raising=False)
    return importlib.reload(ha)


def test_default_addr_port_from_environment(daemons, monkeypatch):
    d = daemons(ha_connected())
    try:
        mod = _reload_with_env(monkeypatch, CONFD_IPC_ADDR="127.0.0.1", CONFD_IPC_PORT=str(d.port))
        assert mod.ADDR == "127.0.0.1" and mod.PORT == d.port
        s = d.client_socket()
        mod.connect(s, TOKEN)           # no ip, no port: ADDR:PORT from the environment
        s.close()
        assert d.finish()[0]["hello"] == SPEC["hello"]
    finally:
        monkeypatch.undo()
        importlib.reload(ha)
    assert ha.PORT == int(os.environ.get("CONFD_IPC_PORT") or 4565)


def test_default_addr_port_without_environment(monkeypatch):
    try:
        mod = _reload_with_env(monkeypatch)
        assert mod.ADDR == "127.0.0.1"
        assert mod.PORT == 4565 == mod.CONFD_PORT
        assert mod.NCS_PORT == 4569
        mod = _reload_with_env(monkeypatch, CONFD_IPC_ADDR="", CONFD_IPC_PORT="")
        assert (mod.ADDR, mod.PORT) == ("127.0.0.1", 4565)
        mod = _reload_with_env(monkeypatch, CONFD_IPC_PORT="not-a-port")
        assert mod.PORT == 4565
    finally:
        monkeypatch.undo()
        importlib.reload(ha)


# ---------------------------------------------------------------- IPC access check


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "ipc_access"
    p.write_bytes(SECRET)
    return str(p)


def access_v2_script():
    return [expect(9, "hello"), send(SPEC["challenge_v2"]), expect(33, "response"),
            send(SPEC["access_ok"]), send(SPEC["reply_accepted"]), expect_frame("token")]


def access_v1_script():
    return [expect(9, "hello"), send(SPEC["challenge_v1"]), expect(17, "response"),
            send(SPEC["access_ok"]), send(SPEC["reply_accepted"]), expect_frame("token")]


@pytest.mark.parametrize("var", ["CONFD_IPC_ACCESS_FILE", "NCS_IPC_ACCESS_FILE"])
def test_access_check_v2_vector(daemons, monkeypatch, secret_file, var):
    monkeypatch.setenv(var, secret_file)
    d = daemons([access_v2_script(), expect_frame("order"), send(SPEC["reply_ok"])])
    s = connect(d)
    ha.beprimary(s, "n1")
    s.close()
    (rec,) = d.finish()
    assert rec["hello"] == SPEC["hello_v2"]
    assert rec["response"] == SPEC["response_v2"]
    assert rec["response"][1:].hex() == (
        "0d7943028d06f722e32233e60f3af808207d3014bc42faf5cd56119f103e201a")
    assert rec["order"] == SPEC["beprimary_n1"]


def test_access_check_v1_when_configured(daemons, monkeypatch, secret_file):
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    ha.configure(access_version=1)   # restored by clean_client_env
    d = daemons(access_v1_script())
    s = connect(d)
    s.close()
    (rec,) = d.finish()
    assert rec["hello"] == SPEC["hello_v1"]
    assert rec["response"] == SPEC["response_v1"]
    assert rec["response"][1:].hex() == "c3b2645f7dc082e7dc50f83977198150"


def test_access_version_per_connection(daemons, monkeypatch, secret_file):
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    d = daemons(access_v1_script())
    s = connect(d, access_version=1)
    s.close()
    assert d.finish()[0]["response"] == SPEC["response_v1"]
    assert _handshake.SETTINGS.access_version == 2


def test_access_confd_variable_first(daemons, monkeypatch, secret_file, tmp_path):
    other = tmp_path / "other"
    other.write_bytes(b"not-the-secret")
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    monkeypatch.setenv("NCS_IPC_ACCESS_FILE", str(other))
    d = daemons(access_v2_script())
    connect(d).close()
    assert d.finish()[0]["response"] == SPEC["response_v2"]


def test_access_empty_variable_counts_as_unset(daemons, monkeypatch, secret_file):
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", "")
    d = daemons(ha_connected())
    connect(d).close()
    assert d.finish()[0]["hello"] == SPEC["hello"]
    # Empty CONFD_..., set NCS_...: the NCS file is used.
    monkeypatch.setenv("NCS_IPC_ACCESS_FILE", secret_file)
    d = daemons(access_v2_script())
    connect(d).close()
    (rec,) = d.finish()
    assert rec["hello"] == SPEC["hello_v2"]
    assert rec["response"] == SPEC["response_v2"]


def test_access_secret_hashed_raw_with_newline(daemons, monkeypatch, tmp_path):
    import hashlib
    use_access_file(monkeypatch, tmp_path, b"s3cret\n")
    d = daemons(access_v2_script())
    connect(d).close()
    (rec,) = d.finish()
    assert rec["response"] == b"\x0c" + hashlib.sha256(b"s3cret\n" + bytes(range(32))).digest()


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_access_file_unreadable(daemons, monkeypatch, tmp_path, kind):
    path = tmp_path / "nope" if kind == "missing" else tmp_path
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", str(path))
    d = daemons(ha_connected())
    s = d.client_socket()
    e = raises(error.Error, ha.connect, s, TOKEN, **d.where)
    assert type(e) is error.Error
    assert e.confd_errno == error.ERR_OS == 24
    assert e.errno == (errno.ENOENT if kind == "missing" else errno.EISDIR)
    s.close()
    for rec in d.finish():
        assert bytes(rec.all) == b""   # nothing was sent


@pytest.mark.parametrize("first", [0x00, 0x0A, 0x0C, 0x0D])
def test_access_bad_challenge_byte(daemons, monkeypatch, secret_file, first):
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    d = daemons([expect(9, "hello"), send(bytes([first]) + SPEC["challenge_v2"][1:])])
    s = d.client_socket()
    e = raises(error.Error, ha.connect, s, TOKEN, **d.where)
    assert e.confd_errno == error.ERR_ACCESS_DENIED == 3
    s.close()
    (rec,) = d.finish()
    assert rec.extra == b""      # no response sent to a non-challenge


def test_access_single_rejection_byte_is_access_denied(daemons, monkeypatch, secret_file):
    """§4.2 step 2: the first byte decides; a daemon that answers the hello with one
    non-0x0B byte (and keeps the connection open) must get ERR_ACCESS_DENIED at once, not
    a wait for 32 more bytes that never come."""
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    d = daemons([expect(9, "hello"), send(b"\x0d")])
    s = d.client_socket(timeout=0.5)
    e = raises(error.Error, ha.connect, s, TOKEN, **d.where)
    assert e.confd_errno == error.ERR_ACCESS_DENIED


def test_access_single_rejection_byte_then_close_is_access_denied(daemons, monkeypatch,
                                                                  secret_file):
    """Same, with the daemon closing after its one byte: still a rejection (the byte says
    so), not a bare EOF."""
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    d = daemons([expect(9, "hello"), send(b"\x01"), close()])
    s = d.client_socket(timeout=0.5)
    e = raises(error.Error, ha.connect, s, TOKEN, **d.where)
    assert e.confd_errno == error.ERR_ACCESS_DENIED


@pytest.mark.parametrize("okbyte", [b"\x01", b"\xff", b"\x0b"])
def test_access_rejected_ok_byte(daemons, monkeypatch, secret_file, okbyte):
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    d = daemons([expect(9, "hello"), send(SPEC["challenge_v2"]), expect(33, "response"),
                 send(okbyte), close()])
    s = d.client_socket()
    e = raises(error.Error, ha.connect, s, TOKEN, **d.where)
    assert e.confd_errno == error.ERR_ACCESS_DENIED
    assert e.confd_strerror == "access denied"
    s.close()
    (rec,) = d.finish()
    assert rec["response"] == SPEC["response_v2"]
    assert rec.extra == b""      # no token after a rejection


@pytest.mark.parametrize("stage", ["before_challenge", "mid_challenge", "before_ok",
                                   "before_reply", "mid_reply"])
def test_access_eof_at_each_stage(daemons, monkeypatch, secret_file, stage):
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    steps = [expect(9, "hello")]
    if stage == "mid_challenge":
        steps.append(send(SPEC["challenge_v2"][:10]))
    elif stage != "before_challenge":
        steps += [send(SPEC["challenge_v2"]), expect(33, "response")]
        if stage in ("before_reply", "mid_reply"):
            steps.append(send(SPEC["access_ok"]))
        if stage == "mid_reply":
            steps.append(send(SPEC["reply_accepted"][:4]))
    steps.append(close())
    d = daemons(steps)
    s = d.client_socket()
    e = raises(error.EOF, ha.connect, s, TOKEN, **d.where)
    assert str(e) == "ConfD closed connection"


# ---------------------------------------------------------------- hello reply status


def test_reply_status_0_and_daemon_info(daemons):
    d = daemons(ha_connected(hello_reply(0, 85, 0x08050600, 61, 19)))
    s = connect(d)
    info = ha.daemon_info(s)
    assert tuple(info) == (0, 85, 0x08050600, 61, 19)
    s.close()
    d.finish()


def test_daemon_info_unknown_socket():
    with socket.socket() as s:
        assert ha.daemon_info(s) is None


@pytest.mark.parametrize("status", [2, 7, 255])
def test_reply_status_other_than_1_is_accepted_with_warning(daemons, caplog, status):
    d = daemons([ha_connected(hello_reply(status)), expect_frame("order"),
                 send(SPEC["status_none"])])
    s = connect(d)
    assert ha.status(s) == (1, [])
    assert ha.daemon_info(s)[0] == status
    warnings = [r for r in caplog.records
                if r.levelno == logging.WARNING and r.name.startswith("confd_ha")]
    assert warnings, "status %d must be logged as a warning" % status
    s.close()
    (rec,) = d.finish()
    assert rec["token"] == struct.pack(">I", len(TOKEN_BYTES)) + TOKEN_BYTES


def test_reply_status_0_logs_no_warning(daemons, caplog):
    d = daemons(ha_connected())
    connect(d).close()
    d.finish()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("family", FAMILIES)
def test_version_rejected_then_renegotiated(daemons, family):
    old = hello_reply(1, 77, 0x07070100)
    d = daemons([expect(9, "hello"), send(old), close()],
                [expect(9, "hello"), send(hello_reply(0, 77, 0x07070100)), expect_frame("token"),
                 expect_frame("order"), send(SPEC["status_relay"])],
                family=family)
    s = d.client_socket(timeout=1.25)
    fd = s.fileno()
    ha.connect(s, TOKEN, **d.where)
    assert s.fileno() == fd
    assert s.gettimeout() == 1.25
    assert tuple(ha.daemon_info(s)) == (0, 77, 0x07070100, 60, 18)
    state, nodes = ha.status(s)
    assert state == 4 and [n["nodeid"] for n in nodes] == ["n1", "n3"]
    first, second = d.conn(0), d.conn(1)
    if family != "unix":
        assert s.getsockname() == second.peer     # the caller's socket is the 2nd connection
    s.close()
    d.finish()
    assert first["hello"] == SPEC["hello"]
    assert first.extra == b""                     # nothing more on the rejected connection
    assert first.client_closed
    assert second["hello"] == hello_bytes(0x11, 77, 0x07070100)
    assert second["token"] == struct.pack(">I", len(TOKEN_BYTES)) + TOKEN_BYTES
    assert second["order"] == SPEC["getstatus"]
    assert (ha.LIB_PROTO_VSN, ha.LIB_VSN) == (82, 0x08020500)   # client-wide pair unchanged


def test_version_renegotiation_blocking_socket(daemons):
    d = daemons([expect(9, "hello"), send(hello_reply(1, 86, 0x08060800)), close()],
                [ha_connected(hello_reply(0, 86, 0x08060800)), expect_frame("order"),
                 send(SPEC["reply_ok"])])
    s = d.client_socket(timeout=None)
    fd = s.fileno()
    ha.connect(s, TOKEN, **d.where)
    assert s.fileno() == fd and s.gettimeout() is None
    ha.benone(s)
    s.close()
    recs = d.finish()
    assert recs[1]["hello"] == hello_bytes(0x11, 86, 0x08060800)
    assert recs[1]["order"] == SPEC["benone"]


def test_version_renegotiation_keeps_access_check(daemons, monkeypatch, secret_file):
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    first = [expect(9, "hello"), send(SPEC["challenge_v2"]), expect(33, "response"),
             send(SPEC["access_ok"]), send(hello_reply(1, 77, 0x07070100)), close()]
    second = [expect(9, "hello"), send(SPEC["challenge_v2"]), expect(33, "response"),
              send(SPEC["access_ok"]), send(hello_reply(0, 77, 0x07070100)),
              expect_frame("token")]
    d = daemons(first, second)
    connect(d).close()
    recs = d.finish()
    assert recs[0]["hello"] == SPEC["hello_v2"]
    assert recs[1]["hello"] == hello_bytes(0xD1, 77, 0x07070100)
    assert recs[0]["response"] == recs[1]["response"] == SPEC["response_v2"]


def test_version_rejected_twice(daemons):
    d = daemons([expect(9, "hello"), send(hello_reply(1, 77, 0x07070100)), close()],
                [expect(9, "hello"), send(hello_reply(1, 66, 0x06060000)), close()])
    s = d.client_socket()
    e = raises(error.Error, ha.connect, s, TOKEN, **d.where)
    assert e.confd_errno == error.ERR_PROTOUSAGE == 21
    assert "82" in str(e) and "77" in str(e)
    assert "configure" in str(e)          # says how to set the pair explicitly
    s.close()
    recs = d.finish()
    assert len(recs) == 2
    assert recs[1]["hello"] == hello_bytes(0x11, 77, 0x07070100)
    assert recs[1].extra == b"" and recs[0].extra == b""   # no token anywhere


def test_version_rejected_with_our_own_version(daemons):
    """A rejection announcing the very version we sent cannot be renegotiated."""
    d = daemons([expect(9, "hello"), send(SPEC["reply_rejected"]), close()])
    s = d.client_socket()
    e = raises(error.Error, ha.connect, s, TOKEN, **d.where)
    assert e.confd_errno == error.ERR_PROTOUSAGE
    assert "82" in str(e)
    s.close()
    assert len(d.finish()) == 1


def test_version_renegotiation_second_connection_eof(daemons):
    d = daemons([expect(9, "hello"), send(hello_reply(1, 77, 0x07070100)), close()],
                [expect(9, "hello"), close()])
    s = d.client_socket()
    fd = s.fileno()
    raises(error.EOF, ha.connect, s, TOKEN, **d.where)
    assert s.fileno() == fd


def test_configure_changes_hello_and_constants(daemons):
    ha.configure(proto_vsn=77, lib_vsn=0x07070100)   # restored by clean_client_env
    assert (ha.LIB_PROTO_VSN, ha.LIB_VSN) == (77, 0x07070100)
    d = daemons(ha_connected(hello_reply(0, 77, 0x07070100)))
    connect(d).close()
    assert d.finish()[0]["hello"] == bytes.fromhex("11004D070701001409")


def test_connect_options_change_only_this_hello(daemons):
    d = daemons(ha_connected())
    connect(d, proto_vsn=66, lib_vsn=0x06060000).close()
    assert d.finish()[0]["hello"] == bytes.fromhex("110042060600001409")
    assert (ha.LIB_PROTO_VSN, ha.LIB_VSN) == (82, 0x08020500)


def test_configure_rejects_bad_values():
    for kw in ({"proto_vsn": 70000}, {"proto_vsn": -1}, {"lib_vsn": 2**32},
               {"access_version": 3}, {"max_reply": 10}):
        with pytest.raises(ValueError):
            ha.configure(**kw)
    assert (ha.LIB_PROTO_VSN, ha.LIB_VSN) == (82, 0x08020500)


def test_connect_unknown_option(daemons):
    d = daemons([])
    with pytest.raises(TypeError):
        ha.connect(d.client_socket(), TOKEN, bogus=1, **d.where)
