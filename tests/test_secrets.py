"""The HA token and the IPC access secret stay secret (project brief; wire-protocol W-10..W-16;
docs/peer-protocol.md).

* Neither secret appears in logs (DEBUG, loggers ``confd_ha`` and ``confd_ha.emulator``), in
  reprs, exception texts, the node's ``decisions`` and ``info()``, the control endpoint's
  answers, ``confd-ha emulate --log-level debug`` output, CLI output, nor in the argv
  (``/proc/<pid>/cmdline``) of ``confd-ha emulate`` or of CLI commands given the token
  through ``--token-file`` or ``$CONFD_HA_TOKEN``.
* Comparisons of the IPC access response and of the inter-node proofs go through
  ``hmac.compare_digest``, and a wrong secret of the same length is rejected.
* The emulator listens on loopback by default.
* The inter-node proof uses fresh nonces both ways: a real join recorded by a
  man-in-the-middle proxy cannot be replayed.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import threading

import pytest

import confd_ha as ha
import refcodec
from confd_ha import _handshake, error, events
from confd_ha.emulator import NodeConfig
from confd_ha.testing.control import ControlClient
from confd_ha.testing.process import EMULATE_CODE, package_env
from net_helpers import accept_until, recv_payload
from waiting import wait_until

TOKEN_MARK = "TokQ-7731-secret"
TOKEN = "tk-" + TOKEN_MARK
WRONG_TOKEN = "tk-" + TOKEN_MARK.upper()        # same length, different bytes
ACCESS_MARK = "AccZ-4417-secret"
ACCESS_SECRET = ("ac-" + ACCESS_MARK + "\n").encode()
MARKS = [TOKEN_MARK, TOKEN_MARK.upper(), ACCESS_MARK]


def leaks(text) -> list:
    """The secret marks found in ``text`` -- as text, and as the hex of their bytes."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    found = [m for m in MARKS if m in text]
    low = text.lower()
    found += [m + " (hex)" for m in MARKS if m.encode().hex() in low.replace(" ", "")]
    return found


def exc_texts(exc: BaseException) -> str:
    import traceback
    return "\n".join([str(exc), repr(exc), repr(exc.args), repr(vars(exc)),
                      "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))])


@pytest.fixture
def access_file(tmp_path, monkeypatch):
    path = tmp_path / "ipc_access"
    path.write_bytes(ACCESS_SECRET)
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", str(path))
    monkeypatch.delenv("NCS_IPC_ACCESS_FILE", raising=False)
    return str(path)


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="confd_ha")
    caplog.set_level(logging.DEBUG, logger="confd_ha.emulator")
    return caplog


def assert_logs_clean(caplog) -> None:
    assert not leaks(caplog.text)
    for rec in caplog.records:
        assert not leaks(str(rec.msg)) and not leaks(repr(rec.args)), rec
        if rec.exc_info:
            assert not leaks(logging.Formatter().formatException(rec.exc_info))


# ---------------------------------------------------------------- in-process: everything


def test_secrets_absent_from_logs_reprs_errors_decisions_info_control(
        ha_cluster, access_file, debug_logs):
    """A cluster with the IPC access check on, driven through success and failure paths:
    joins, a wrong token (BADTOKEN), a wrong access secret, commits, events, a kill and a
    restart. Every observable text is then searched for both secrets."""
    c = ha_cluster(3, tick_timeout=0.5, control=True, ipc_access_file=access_file)
    p, s2, s3 = c[0], c[1], c[2]
    errors = []
    ev = p.subscribe()
    with p.connect_ha(TOKEN) as sp:
        ha.beprimary(sp, "n1")
        with s2.connect_ha(TOKEN) as ss:
            ha.besecondary(ss, "n2", "n1", p.ha_address, 1)
        with s3.connect_ha(WRONG_TOKEN) as ss:       # same length, different token
            with pytest.raises(error.Error) as info:
                ha.besecondary(ss, "n3", "n1", p.ha_address, 1)
            assert info.value.confd_errno == error.ERR_HA_BADTOKEN
            errors.append(info.value)
            ha.besecondary(ss, "n3", "n1", p.ha_address, 0)     # async: result as event
        p.set("/sec/a", "1")
        assert ha.status(sp)[0] == ha.STATE_PRIMARY
    # A wrong IPC access secret of the same length: denied.
    wrong = os.path.join(os.path.dirname(access_file), "wrong")
    with open(wrong, "wb") as f:
        f.write(ACCESS_SECRET.upper())
    os.environ["CONFD_IPC_ACCESS_FILE"] = wrong
    try:
        with socket.socket() as sk:
            sk.settimeout(5)
            with pytest.raises(error.Error) as info:
                ha.connect(sk, TOKEN, p.ipc_address, p.ipc_port)
            assert info.value.confd_errno == error.ERR_ACCESS_DENIED
            errors.append(info.value)
    finally:
        os.environ["CONFD_IPC_ACCESS_FILE"] = access_file
    # Failures after the connect: EOF from a killed node, BADSTATE from a secondary.
    s2_ctl = s2.connect_ha(TOKEN)
    with pytest.raises(error.Error) as info:
        s2.set("/sec/b", "2")
    errors.append(info.value)
    p.kill()
    s2.wait_state(ha.STATE_NONE)
    p.restart()
    s2.kill()                                # the node dies under its control socket
    with pytest.raises(error.EOF) as info:
        ha.status(s2_ctl)
    errors.append(info.value)
    s2_ctl.close()
    while True:
        ev.settimeout(0.2)
        try:
            events.read_notification(ev)
        except error.Timeout:
            break
        except error.EOF:
            break
    ev.close()

    for exc in errors:
        assert not leaks(exc_texts(exc)), exc
    for n in c:
        assert not leaks(repr(n)) and not leaks(repr(n.config))
        assert not leaks(json.dumps(n.info())) and not leaks("\n".join(n.decisions))
        assert not leaks(c.emulator.call(repr, n.node))
        # The control endpoint: every read-only op.
        with ControlClient(n.ipc_address, n.ipc_port, timeout=5) as cc:
            for op, args in (("info", {}), ("show", {}), ("txid", {})):
                try:
                    answer = cc.request_raw(dict(args, op=op))
                except OSError:
                    continue
                assert not leaks(json.dumps(answer)), (op, answer)
            answer = cc.request_raw({"op": "no-such-op", "token": TOKEN})
            assert not answer["ok"]
    assert not leaks(repr(c))
    # The logs did capture the emulator's decisions and the join failure (so the search
    # above searched something).
    assert "token replaced" in debug_logs.text and "HA_BADTOKEN" in debug_logs.text
    assert_logs_clean(debug_logs)


def test_objects_holding_a_secret_hide_it_in_their_repr(access_file):
    """The connect plan carries the access secret (found here; fixed in 9cde2b3)."""
    plan = _handshake.make_plan(17)
    assert plan.secret == ACCESS_SECRET
    assert not leaks(repr(plan)) and not leaks(str(plan))


def test_join_params_repr_hides_the_token():
    from confd_ha.emulator import peer

    params = peer.JoinParams(me=b"n2", pid=b"n1", token=TOKEN.encode(), ha_vsn=1, fxs_fp=b"",
                             ha_config_fp=b"", txid="initial", port=1, source_ip="127.0.0.1",
                             tick=1.0, max_frame=1024, label="x")
    assert not leaks(repr(params)) and not leaks(str(params))


# ---------------------------------------------------------------- constant-time comparisons


def test_access_check_and_peer_proofs_use_compare_digest(ha_cluster, access_file,
                                                         monkeypatch):
    """hmac.compare_digest sees the access response and both peer proofs; with a wrong
    secret or token of the same length it says no and the node refuses."""
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    c = ha_cluster(2, tick_timeout=0.5, ipc_access_file=access_file)
    with c[0].connect_ha(TOKEN) as sp:
        ha.beprimary(sp, "n1")
    # IPC access: 1 + 32-byte responses (v2) compared by the node.
    access = [x for x in calls if len(x[0]) == 33 and x[0][0] == 0x0C]
    assert access and all(a == b for a, b in access)
    calls.clear()
    with c[1].connect_ha(TOKEN) as ss:
        ha.besecondary(ss, "n2", "n1", c[0].ha_address, 1)
    proofs = [x for x in calls if len(x[0]) == 32]
    assert len(proofs) >= 2            # the joiner checks P's proof, P checks the joiner's
    calls.clear()
    with c[1].connect_ha(WRONG_TOKEN) as ss:
        ha.benone(ss)
        with pytest.raises(error.Error) as info:
            ha.besecondary(ss, "n2", "n1", c[0].ha_address, 1)
    assert info.value.confd_errno == error.ERR_HA_BADTOKEN
    assert any(len(a) == 32 and a != b for a, b in calls)    # compared, and unequal


# ---------------------------------------------------------------- loopback by default


def test_emulator_defaults_to_loopback(ha_emulator):
    for flavour in ("confd", "nso"):
        cfg = NodeConfig(flavour=flavour)
        assert cfg.ipc_address == "127.0.0.1" and cfg.ha_address == "127.0.0.1"
    from confd_ha.emulator.config import config_from_args
    from confd_ha.cli import build_parser  # noqa: F401 -- the real emulate parser

    args = build_parser().parse_args(["emulate", "--ipc-port", "0"])
    cfg = config_from_args(args)
    assert cfg.ipc_address == "127.0.0.1" and cfg.ha_address == "127.0.0.1"


def test_emulate_process_listens_on_loopback_only(ha_node_process_factory):
    """`confd-ha emulate` without --ipc-address: its listeners (IPC, and HA once primary)
    are bound to 127.0.0.1, as /proc/net/tcp shows; nothing on 0.0.0.0 or ::."""
    from confd_ha.testing.process import EmulatorProcess
    from confd_ha.testing.ports import PortReservation

    with PortReservation(["127.0.0.1"]) as res:
        proc = EmulatorProcess("--ipc-port", "0", "--ha-port", str(res.port)).start()
        try:
            assert proc.ipc_address == "127.0.0.1" and proc.ha_address == "127.0.0.1"
            with socket.socket() as s:
                s.settimeout(5)
                ha.connect(s, TOKEN, "127.0.0.1", proc.ipc_port)
                ha.beprimary(s, "n1")
            listening = _listening_sockets(proc.pid)
            assert ("127.0.0.1", proc.ipc_port) in listening
            assert ("127.0.0.1", res.port) in listening
            assert all(addr == "127.0.0.1" for addr, _ in listening), listening
        finally:
            proc.terminate()


def _listening_sockets(pid: int) -> set:
    """(address, port) of the TCP listeners owned by process ``pid`` (IPv4 and IPv6)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table, v6 in (("tcp", False), ("tcp6", True)):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] != "0A" or fields[9] not in inodes:     # LISTEN, ours
                    continue
                hexaddr, hexport = fields[1].split(":")
                raw = bytes.fromhex(hexaddr)
                if v6:
                    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    addr = socket.inet_ntop(socket.AF_INET6, raw)
                else:
                    addr = socket.inet_ntoa(raw[::-1])
                out.add((addr, int(hexport, 16)))
    return out


# ---------------------------------------------------------------- processes: debug output, argv


def _cli(*args, env=None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", EMULATE_CODE, *args], env=package_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_processes_keep_secrets_out_of_argv_and_output(ha_node_process_factory, tmp_path):
    """Two `confd-ha emulate --log-level debug` processes with the access check; a join with
    the token, a join with a wrong token, the CLI with --token-file and with
    $CONFD_HA_TOKEN, `confd-ha cdb info`: no secret in any argv, stdout or stderr."""
    access = tmp_path / "ipc_access"
    access.write_bytes(ACCESS_SECRET)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    wrong_file = tmp_path / "wrong_token"
    wrong_file.write_text(WRONG_TOKEN + "\n")
    env = dict(os.environ, CONFD_IPC_ACCESS_FILE=str(access))
    env.pop("CONFD_HA_TOKEN", None)
    n1 = ha_node_process_factory("--log-level", "debug", "--ipc-access-file", str(access),
                                 tick_timeout=0.5)
    n2 = ha_node_process_factory("--log-level", "debug", "--ipc-access-file", str(access),
                                 tick_timeout=0.5)
    for n in (n1, n2):
        assert not leaks(open("/proc/%d/cmdline" % n.pid, "rb").read())

    def conn(n):
        return ["--ipc-address", n.ipc_address, "--ipc-port", str(n.ipc_port), "--timeout", "10"]

    outputs = []

    def run(*args, env=env, expect=0):
        p = _cli(*args, env=env)
        out, err = p.communicate(timeout=30)
        outputs.append(out + err)
        assert p.returncode == expect, (args, out, err)
        return out

    run("be-primary", "n1", "--token-file", str(token_file), *conn(n1))
    run("be-secondary", "n2", "n1", n1.ha_address, "--token-file", str(token_file), *conn(n2))
    run("status", "--json", *conn(n1), env=dict(env, CONFD_HA_TOKEN=TOKEN))
    run("be-none", "--token-file", str(wrong_file), *conn(n2))
    run("be-secondary", "n2", "n1", n1.ha_address, "--token-file", str(wrong_file), *conn(n2),
        expect=1)                                           # BADTOKEN
    assert b"28" in outputs[-1] and b"HA_BADTOKEN" in outputs[-1]
    for n in (n1, n2):
        run("cdb", "--ipc-address", n.ipc_address, "--ipc-port", str(n.ipc_port), "info")
        run("cdb", "--json", "--ipc-address", n.ipc_address, "--ipc-port", str(n.ipc_port),
            "info")

    # While a CLI command waits (a daemon that accepts and never answers), read its argv.
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(4)
        port = hole.getsockname()[1]
        waiting = [
            _cli("status", "--ipc-port", str(port), "--timeout", "5", "--token-file",
                 str(token_file), env={k: v for k, v in env.items()
                                       if k != "CONFD_IPC_ACCESS_FILE"}),
            _cli("be-primary", "n1", "--ipc-port", str(port), "--timeout", "5",
                 env=dict(env, CONFD_HA_TOKEN=TOKEN)),
        ]
        try:
            held = []
            for _ in waiting:
                conn_, _ = hole.accept()          # the command is connected and waiting
                held.append(conn_)
            for p in waiting:
                cmdline = open("/proc/%d/cmdline" % p.pid, "rb").read()
                assert b"--ipc-port" in cmdline and not leaks(cmdline), cmdline
        finally:
            for p in waiting:
                p.kill()
                p.communicate(timeout=10)
            for c_ in held:
                c_.close()

    # The nodes' debug logs, after all of that.
    for n in (n1, n2):
        n.terminate()
        text = n.stderr_text()
        assert "token replaced" in text                 # verbose logging was really on
        assert not leaks(text), leaks(text)
    for out in outputs:
        assert not leaks(out), out


# ---------------------------------------------------------------- replay of a recorded join


class Proxy:
    """A man-in-the-middle TCP relay: accepts on ``listen``, connects to ``target``, copies
    both ways and records each direction of each connection in ``sessions``."""

    def __init__(self, listen, target):
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(listen)
        self.sock.listen(4)
        self.sock.settimeout(0.05)
        self.sessions: list = []       # (joiner -> primary, primary -> joiner) per connection
        self.stop = threading.Event()
        self.conns: list = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        accept_until(self.sock, self.stop, self._relay)

    def _relay(self, a, _peer):
        b = socket.create_connection(self.target, timeout=5)
        self.conns += [a, b]
        up, down = bytearray(), bytearray()
        self.sessions.append((up, down))
        for src, dst, rec in ((a, b, up), (b, a, down)):
            t = threading.Thread(target=self._pump, args=(src, dst, rec), daemon=True)
            t.start()
            self.threads.append(t)

    def _pump(self, src, dst, rec):
        src.settimeout(0.05)
        while not self.stop.is_set():
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            rec += data
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.sock.close()
        for c in self.conns:
            c.close()
        for t in self.threads:
            t.join(2)


def frames(data: bytes) -> list:
    """The terms of the complete frames in ``data`` (decoded by the reference codec)."""
    out, i = [], 0
    while i + 4 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        if i + 4 + n > len(data):
            break
        out.append((data[i:i + 4 + n], refcodec.decode(data[i + 4:i + 4 + n])))
        i += 4 + n
    return out


def first(recorded, tag):
    for raw, term in recorded:
        if isinstance(term, tuple) and term and term[0] == tag:
            return raw, term
    raise AssertionError("no %s frame in %r" % (tag, [t for _, t in recorded]))


def wait_arrived(p, n, timeout=5.0):
    """Until the primary lists ``n`` secondaries (besecondary returns at the joiner's end of
    the sync; the primary lists it from its admission on, docs/peer-protocol.md)."""
    wait_until(lambda: len(p.status()[1]) == n, timeout, interval=0.01)


def recv_frame(s: socket.socket):
    """The term of the next frame on ``s``; None when the peer closes first."""
    try:
        return refcodec.decode(recv_payload(s))
    except EOFError:
        return None


def test_recorded_join_cannot_be_replayed(ha_cluster):
    """n2 joins n1 through a recording proxy on 127.0.0.3 (the cluster's third address, so
    the HA port is reserved there too). The recorded ha_hello and ha_auth, replayed on a new
    connection to n1, get a fresh challenge and are rejected with HA_BADTOKEN; a second real
    join uses fresh nonces; the token itself never crosses the wire."""
    c = ha_cluster(3, tick_timeout=0.5)
    p, s = c[0], c[1]
    proxy = Proxy((c.addresses[2], c.ha_port), (p.ha_address, c.ha_port))
    try:
        with p.connect_ha(TOKEN) as sp:
            ha.beprimary(sp, "n1")
        with s.connect_ha(TOKEN) as ss:
            ha.besecondary(ss, "n2", "n1", c.addresses[2], 1)      # through the proxy
            wait_arrived(p, 1)
            p.set("/replay/x", "1")
            # (listed at admission; the commit waits for n2 only once its ha_synced has come
            # through the proxy: docs/peer-protocol.md, step 7)
            wait_until(lambda: s.get("/replay/x") == "1", interval=0.01)
            assert len(proxy.sessions) == 1
            up, down = (frames(bytes(x)) for x in proxy.sessions[0])
            hello_raw, hello = first(up, "ha_hello")
            auth_raw, auth = first(up, "ha_auth")
            _, challenge = first(down, "ha_challenge")
            for data in proxy.sessions[0]:
                assert TOKEN.encode() not in data and not leaks(bytes(data))

            # Replay on a fresh connection straight to the primary.
            with socket.create_connection((p.ha_address, c.ha_port), timeout=5) as r:
                r.sendall(hello_raw)
                fresh = recv_frame(r)
                assert fresh[0] == "ha_challenge"
                assert fresh[2] != challenge[2], "the primary reused its nonce"
                r.sendall(auth_raw)
                replies = []
                while True:
                    term = recv_frame(r)
                    if term is None:
                        break
                    replies.append(term)
                assert replies and replies[0][0] == "ha_reject", replies
                assert replies[0][1] == error.ERR_HA_BADTOKEN
                assert not any(t[0] == "ha_sync" for t in replies)
            assert [nid for nid, _ in p.status()[1]] == [b"n2"]    # only the real one

            # A second real join: the joiner's nonce and proof are fresh too.
            ha.benone(ss)
            ha.besecondary(ss, "n2", "n1", c.addresses[2], 1)
            assert len(proxy.sessions) == 2
            up2 = frames(bytes(proxy.sessions[1][0]))
            hello2, auth2 = first(up2, "ha_hello")[1], first(up2, "ha_auth")[1]
            assert hello2[5] != hello[5] and len(hello2[5]) == 32
            assert auth2[1] != auth[1]
    finally:
        proxy.close()
