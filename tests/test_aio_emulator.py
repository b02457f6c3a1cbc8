"""confd_ha.aio end to end against emulated nodes: the same scenarios, results and errors as
the blocking API, the async iterator, HA_INFO_SYNC acknowledgements and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import errno

import pytest

import confd_ha as ha
from confd_ha import aio, error
from events_helpers import (
    HA_MASK, IS_NONE, IS_PRIMARY, SYNC_MASK, TICK, arrived, initialized, noprimary, result,
)
from waiting import wait_until

STEP = 10.0


def arun(coro):
    return asyncio.run(asyncio.wait_for(coro, STEP))


def where(node):
    return {"ip": node.ipc_address, "port": node.ipc_port}


@contextlib.asynccontextmanager
async def events_and_control(node, mask: int = HA_MASK):
    """An event stream for ``mask`` and a control connection (token "tok") to ``node``."""
    async with await aio.notifications_connect(mask, **where(node)) as e, \
            await aio.connect("tok", **where(node)) as p:
        yield e, p


async def outcome(coro):
    try:
        return ("ok", await coro)
    except (error.Error, error.EOF) as exc:
        return ("raised", type(exc), exc.confd_errno, exc.confd_lasterr)


def sync_outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except (error.Error, error.EOF) as exc:
        return ("raised", type(exc), exc.confd_errno, exc.confd_lasterr)


# The same script of orders on a fresh 3-node cluster, through either API: node index,
# method, arguments. Results and errors must agree.
SCRIPT = [
    (0, "status", ()),
    (0, "berelay", ()),                                  # NONE: BADSTATE
    (1, "besecondary", ("n2", "n1", "{0}", 1)),          # n1 is not listening: HA_CONNECT
    (0, "beprimary", ("n1",)),
    (0, "beprimary", ("n1",)),                           # idempotent
    (1, "besecondary", ("n2", "nX", "{0}", 1)),          # wrong name: HA_BADNAME
    (1, "besecondary", ("n2", "n1", "{0}", 1)),
    (None, "arrived", (0, b"n2")),
    (1, "berelay", ()),
    (2, "beslave", ("n3", "n2", "{1}", True)),           # behind the relay
    (None, "arrived", (1, b"n3")),
    (0, "status", ()),
    (1, "status", ()),
    (2, "status", ()),
    (0, "secondary_dead", ("nobody",)),
    (0, "slave_dead", ("n2",)),
    (None, "none", (1,)),
    (1, "status", ()),
    (0, "bemaster", ("n1",)),
    (0, "benone", ()),
    (0, "status", ()),
]


def _args(c, args):
    return tuple(a.format(*c.addresses) if isinstance(a, str) else a for a in args)


def settle(c, what, args):
    """Across nodes nothing is ordered (B-26): wait for a peer's view before the next order,
    so that both runs observe the same states."""
    if what == "arrived":
        parent, nodeid = args
        wait_until(lambda: any(nid == nodeid for nid, _ in c[parent].status()[1]), interval=0.01)
    else:
        c[args[0]].wait_state(ha.STATE_NONE, timeout=5)


def orders(c):
    """SCRIPT's orders as (node index, method name, arguments for cluster ``c``), each
    after the waits SCRIPT puts before it (done as the caller asks for the next order)."""
    for i, method, args in SCRIPT:
        if i is None:
            settle(c, method, args)
        else:
            yield i, method, _args(c, args)


def run_sync(c):
    socks = [c[i].connect_ha("tok") for i in range(len(c))]
    try:
        out = [sync_outcome(getattr(ha, method), socks[i], *args) for i, method, args in orders(c)]
    finally:
        for s in socks:
            s.close()
    return out


async def run_async(c):
    conns = [await aio.connect("tok", **where(c[i])) for i in range(len(c))]
    out = []
    try:
        for i, method, args in orders(c):
            out.append(await outcome(getattr(conns[i], method)(*args)))
    finally:
        for conn in conns:
            await conn.close()
    return out


def test_same_results_and_errors_as_the_blocking_api(clusters):
    c_sync, c_async = clusters(3, base=1), clusters(3, base=11)
    sync = run_sync(c_sync)
    got = arun(run_async(c_async))
    # Addresses differ between the two clusters: compare with them swapped in.
    swap = dict(zip(c_async.addresses, c_sync.addresses))

    def norm(o):
        if o[0] == "ok" and isinstance(o[1], tuple):
            state, nodes = o[1]
            return ("ok", (state, [{"nodeid": n["nodeid"],
                                    "address": swap.get(n["address"], n["address"])}
                                   for n in nodes]))
        return o

    assert [norm(o) for o in got] == sync
    codes = [o[2] for o in sync if o[0] == "raised"]
    assert codes == [error.ERR_BADSTATE, error.ERR_HA_CONNECT, error.ERR_HA_BADNAME]
    # the primary lists the node behind its relay too, newest first (docs/conformance.md
    # "Listing", relay_chain)
    assert sync[9] == ("ok", (ha.STATE_PRIMARY,
                              [{"nodeid": "n3", "address": c_sync.addresses[2]},
                               {"nodeid": "n2", "address": c_sync.addresses[1]}]))
    assert sync[10] == ("ok", (ha.STATE_SECONDARY_RELAY,
                               [{"nodeid": "n1", "address": c_sync.addresses[0]},
                                {"nodeid": "n3", "address": c_sync.addresses[2]}]))
    assert sync[-1] == ("ok", (ha.STATE_NONE, []))


def test_event_stream_scenario(clusters):
    """Asynchronous join, its events on both nodes, the primary's death: every event read
    through the async iterator, interleaved with control calls on the same loop."""
    c = clusters(2)

    async def go():
        e1 = await aio.notifications_connect(HA_MASK, **where(c[0]))
        e2 = await aio.notifications_connect(HA_MASK, **where(c[1]))
        async with e1, e2, await aio.connect("tok", **where(c[0])) as p, \
                await aio.connect("tok", **where(c[1])) as s:
            await p.beprimary("n1")
            assert (await e1.read())["hnot"] == IS_PRIMARY
            await s.besecondary("n2", "n1", c[0].ipc_address, 0)
            seen = []
            async for n in e2:
                seen.append(n["hnot"])
                if len(seen) == 2:
                    break
            assert seen == [result(0), initialized(1)]    # none_besecondary_async
            assert (await e1.read())["hnot"] == arrived("n2", c[1].ipc_address)
            assert await s.status() == (ha.STATE_SECONDARY,
                                        [{"nodeid": "n1", "address": c[0].ipc_address}])
            c[0].kill()
            assert (await e2.read())["hnot"] == noprimary(error.ERR_HA_CLOSED)
            assert (await e2.read())["hnot"] == IS_NONE
            with pytest.raises(error.EOF):
                await e1.read()

    arun(go())


def test_failed_async_join_result(clusters):
    c = clusters(2)

    async def go():
        async with events_and_control(c[1]) as (e2, s):
            await s.besecondary("n2", "n1", c[0].ipc_address, False)    # n1 is NONE
            assert (await e2.read())["hnot"] == result(error.ERR_HA_CONNECT)
            assert (await e2.read())["hnot"] == IS_NONE
            with pytest.raises(error.Error) as info:
                await s.besecondary("n2", "n1", c[0].ipc_address, True)
            assert info.value.confd_errno == error.ERR_HA_CONNECT

    arun(go())


def test_ha_info_sync_with_async_acknowledgement(clusters):
    c = clusters(1)

    async def go():
        async with events_and_control(c[0], SYNC_MASK) as (syncer, p):
            await p.beprimary("n1")
            assert (await syncer.read())["hnot"] == IS_PRIMARY
            pending = asyncio.ensure_future(p.benone())
            done, _ = await asyncio.wait({pending}, timeout=0.3)
            assert not done                      # held back until acknowledged
            await syncer.sync()
            assert (await syncer.read())["hnot"] == IS_NONE
            done, _ = await asyncio.wait({pending}, timeout=0.3)
            assert not done                      # benone answers after IS_NONE's acknowledgement
            await syncer.sync()
            await asyncio.wait_for(pending, 5)

    arun(go())


def test_cancelled_read_then_event(clusters):
    c = clusters(1)

    async def go():
        async with events_and_control(c[0]) as (e, p):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(e.read(), 0.2)
            await p.beprimary("n1")
            assert (await e.read())["hnot"] == IS_PRIMARY

    arun(go())


def test_cancelled_join_reply_is_skipped(clusters):
    """A synchronous join towards a frozen primary is cancelled; its late reply (the join's
    error, after the join deadline) is skipped by the next call, which gets its own answer --
    a status, answered only once the join is over (docs/conformance.md "One order at a
    time")."""
    c = clusters(2, join_timeout=1.0)   # ConfD's 10 s join deadline, shortened

    async def go():
        async with await aio.connect("tok", **where(c[0])) as p, \
                await aio.connect("tok", **where(c[1])) as s:
            await p.beprimary("n1")
            c[0].freeze()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(s.besecondary("n2", "n1", c[0].ipc_address, 1), 0.1)
            status = await s.status()
            c[0].thaw()
            return status

    assert arun(go()) == (ha.STATE_NONE, [])


def test_timeout_option_against_a_quiet_node(clusters):
    c = clusters(1)

    async def go():
        async with await aio.notifications_connect(HA_MASK, timeout=0.2,
                                                   **where(c[0])) as e:
            with pytest.raises(error.Timeout) as info:
                await e.read()
            assert info.value.confd_errno == error.ERR_OS
            assert info.value.errno == errno.ETIMEDOUT
            assert isinstance(info.value, TimeoutError)

    arun(go())


def test_many_subscribers_on_one_loop(clusters):
    c = clusters(1)

    async def go():
        streams = [await aio.notifications_connect(HA_MASK, **where(c[0])) for _ in range(20)]
        async with await aio.connect("tok", **where(c[0])) as p:
            await p.beprimary("n1")
            await p.benone()
        got = await asyncio.gather(*[asyncio.gather(s.read(), s.read()) for s in streams])
        for s in streams:
            await s.close()
        return got

    for pair in arun(go()):
        assert [n["hnot"] for n in pair] == [IS_PRIMARY, IS_NONE]


def test_unix_path_connect(tmp_path):
    from confd_ha.testing.loop import EmulatorThread
    from confd_ha.testing.ports import free_port

    path = str(tmp_path / "ipc.sock")
    with EmulatorThread(timeout=10) as emu:
        emu.add_node(name="u", ipc_address="127.0.0.1", ipc_port=0, ha_port=free_port(),
                     ipc_path=path, tick_timeout=TICK)

        async def go():
            async with await aio.notifications_connect(HA_MASK, path=path) as e, \
                    await aio.connect(b"tok", path=path) as p:
                await p.beprimary("u1")
                assert (await e.read())["hnot"] == IS_PRIMARY
                return await p.status()

        assert arun(go()) == (ha.STATE_PRIMARY, [])
