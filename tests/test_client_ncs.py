"""confd_ha.ncs: the _ncs.ha flavour connects to NSO's IPC port by default."""

from __future__ import annotations

import importlib
import socket

import pytest

import confd_ha
import confd_ha.ncs


def test_ncs_defaults(monkeypatch):
    monkeypatch.delenv("NCS_IPC_PORT", raising=False)
    monkeypatch.delenv("NCS_IPC_ADDR", raising=False)
    mod = importlib.reload(confd_ha.ncs)
    assert (mod.PORT, mod.ADDR) == (4569, "127.0.0.1")
    assert mod.beprimary is confd_ha.beprimary and mod.STATE_MASTER == 3
    assert mod.error is confd_ha.error and mod.NCS_PORT == 4569


def test_ncs_connect_uses_ncs_port_from_env(monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    monkeypatch.setenv("NCS_IPC_PORT", str(port))
    mod = importlib.reload(confd_ha.ncs)
    client = socket.socket()
    client.settimeout(2)
    try:
        # The listener never answers the hello: the connect reaches it and then times out.
        with pytest.raises(confd_ha.error.Timeout):
            client.settimeout(0.3)
            mod.connect(client, "token")
        conn, _ = server.accept()
        with conn:
            conn.settimeout(2)
            assert conn.recv(9)[:1] == b"\x11"
    finally:
        client.close()
        server.close()
        monkeypatch.delenv("NCS_IPC_PORT")
        importlib.reload(confd_ha.ncs)
