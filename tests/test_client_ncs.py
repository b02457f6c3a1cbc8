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


@pytest.fixture
def nso_listener(monkeypatch):
    """A loopback listener named by ``$NCS_IPC_PORT`` (confd_ha.ncs reloaded to read it) that
    never answers: a client that reaches it times out in its hello."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    monkeypatch.setenv("NCS_IPC_PORT", str(server.getsockname()[1]))
    importlib.reload(confd_ha.ncs)
    try:
        yield server
    finally:
        server.close()
        monkeypatch.delenv("NCS_IPC_PORT")
        importlib.reload(confd_ha.ncs)


def first_byte_of_hello(server) -> bytes:
    conn, _ = server.accept()
    with conn:
        conn.settimeout(2)
        return conn.recv(9)[:1]


def test_ncs_events_connect_uses_ncs_port(nso_listener):
    # _ncs.events.notifications_connect(s, mask) goes to NSO's port, not ConfD's 4565.
    from confd_ha.ncs import events as ncs_events

    assert ncs_events.NOTIF_HA_INFO == confd_ha.events.NOTIF_HA_INFO
    client = socket.socket()
    try:
        client.settimeout(0.3)
        with pytest.raises(confd_ha.error.Timeout):
            ncs_events.notifications_connect(client, ncs_events.NOTIF_HA_INFO)
        assert first_byte_of_hello(nso_listener) == b"\x0b"   # an event socket's hello
    finally:
        client.close()


def test_ncs_aio_uses_ncs_port(nso_listener):
    import asyncio

    from confd_ha.ncs import aio as ncs_aio

    async def go(open_):
        with pytest.raises(confd_ha.error.Timeout):
            await open_()

    asyncio.run(go(lambda: ncs_aio.connect("token", timeout=0.3)))
    assert first_byte_of_hello(nso_listener) == b"\x11"
    asyncio.run(go(lambda: ncs_aio.notifications_connect(confd_ha.events.NOTIF_HA_INFO,
                                                         timeout=0.3)))
    assert first_byte_of_hello(nso_listener) == b"\x0b"


def test_ncs_port_assigned_is_the_default_of_its_events(monkeypatch):
    # ADDR/PORT of a flavour are one setting: assigning confd_ha.ncs.PORT moves the default
    # of confd_ha.ncs.events too, and leaves ConfD's alone.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    monkeypatch.setattr(confd_ha.ncs, "PORT", server.getsockname()[1])
    assert confd_ha.PORT != confd_ha.ncs.PORT
    client = socket.socket()
    try:
        client.settimeout(0.3)
        with pytest.raises(confd_ha.error.Timeout):
            confd_ha.ncs.events.notifications_connect(client, confd_ha.events.NOTIF_HA_INFO)
        assert first_byte_of_hello(server) == b"\x0b"
    finally:
        client.close()
        server.close()
