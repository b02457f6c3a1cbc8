"""confd_ha.agent.etcd against a real 3-member etcd cluster on loopback (127.82.90.1-3), through
TcpProxy, and against a small fake HTTP server of our own that answers badly (127.83.90.x).

Skipped when there is no etcd binary, unless ``CI`` is set: then etcd must be there
(``.ci/run`` installs Debian's ``etcd-server``) and its absence fails the tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import socketserver
import threading
import time
import uuid

import pytest

from confd_ha.testing.etcd import TcpProxy
from waiting import wait_until, wait_until_async

if not os.environ.get("CI"):  # in CI the agent's dependencies must be installed
    pytest.importorskip("httpx", reason="the agent needs httpx: pip install 'confd-ha[agent]'")

from confd_ha.agent.etcd import (  # noqa: E402
    KV, Compare, Delete, EtcdClient, EtcdError, Put, WatchEvent,
)

PREFIX = "127.82.90."
ETCD_PREFIX = PREFIX   # the etcd fixture's addresses (conftest.py)
FAKE_HOST = "127.83.90.1"
TIMEOUT = 1.0     # the clients' per-request deadline
SLACK = 0.5       # what a failing request may take beyond its deadline (scheduling)
BOUND = 30.0      # bound on every test's coroutine


def run(coro, bound=BOUND):
    return asyncio.run(asyncio.wait_for(coro, bound))


@pytest.fixture
def etcd_cluster(etcd):
    """The module's etcd cluster, every member running, thawed and healthy before and after."""
    def heal():
        for i in range(3):
            etcd.thaw(i)
            if not etcd.running(i):
                etcd.start(i, wait=False)
        try:
            wait_until(lambda: all(etcd.healthy(i) for i in range(3)), 30.0, 0.05)
        except AssertionError:
            raise AssertionError("etcd did not heal: %s" % etcd.log(0)) from None
    heal()
    yield etcd
    heal()


@pytest.fixture
def prefix():
    return "/test/%s/" % uuid.uuid4().hex[:12]


def client(endpoints, **kw):
    kw.setdefault("timeout", TIMEOUT)
    return EtcdClient(list(endpoints), **kw)


# ---------------------------------------------------------------- keys


def test_put_get_prefix_delete(etcd_cluster, prefix):
    async def main():
        async with client(etcd_cluster.endpoints) as c:
            r1 = await c.put(prefix + "b", b"\x00\xffbinary")
            r2 = await c.put(prefix + "a/é", "unicode".encode())
            r3 = await c.put(prefix[:-1] + "x", b"outside the prefix")
            assert r1 < r2 < r3
            kv = await c.get(prefix + "b")
            assert kv == KV(prefix + "b", b"\x00\xffbinary", r1, r1, 0)
            assert await c.get(prefix + "missing") is None
            rev, kvs = await c.get_prefix(prefix)
            assert rev >= r3
            assert [(k.key, k.value) for k in kvs] == [(prefix + "a/é", b"unicode"),
                                                       (prefix + "b", b"\x00\xffbinary")]
            r4 = await c.put(prefix + "b", b"2")
            kv = await c.get(prefix + "b")
            assert (kv.mod_revision, kv.create_revision) == (r4, r1)
            assert await c.delete(prefix + "b") is True
            assert await c.delete(prefix + "b") is False
            assert await c.get(prefix + "b") is None
            assert (await c.get_prefix(prefix + "zzz"))[1] == []
    run(main())


def test_create_races_have_one_winner(etcd_cluster, prefix):
    async def main():
        a, b = client(etcd_cluster.endpoints), client(etcd_cluster.endpoints[::-1])
        try:
            for n in range(20):
                key = prefix + "leader%d" % n
                won = await asyncio.gather(a.create(key, b"a"), b.create(key, b"b"))
                assert sorted(won) == [False, True], won
                kv = await a.get(key)
                assert kv.value == (b"a" if won[0] else b"b")
        finally:
            await a.close()
            await b.close()
    run(main())


def test_replace_and_delete_if_need_the_current_revision(etcd_cluster, prefix):
    async def main():
        async with client(etcd_cluster.endpoints) as c:
            key = prefix + "k"
            assert await c.create(key, b"v1") is True
            r1 = (await c.get(key)).mod_revision
            assert await c.create(key, b"again") is False
            assert await c.replace(key, b"v2", 0, r1) is True
            r2 = (await c.get(key)).mod_revision
            assert r2 > r1
            assert await c.replace(key, b"stale", 0, r1) is False
            assert (await c.get(key)).value == b"v2"
            assert await c.delete_if(key, r1) is False
            assert (await c.get(key)).value == b"v2"
            assert await c.delete_if(key, r2) is True
            assert await c.get(key) is None
            assert await c.delete_if(key, r2) is False
            # the general txn: one write and one delete under a compare
            await c.put(prefix + "req", b"r")
            r3 = await c.put(key, b"v3")
            assert await c.txn([Compare.mod(key, r1)], [Put(key, b"x")]) is False
            assert await c.txn([Compare.mod(key, r3)],
                               [Put(key, b"v4"), Delete(prefix + "req")]) is True
            assert (await c.get(key)).value == b"v4" and await c.get(prefix + "req") is None
    run(main())


# ---------------------------------------------------------------- leases


def test_lease_keepalive_then_expiry_deletes_the_key(etcd_cluster, prefix):
    async def main():
        async with client(etcd_cluster.endpoints) as c:
            lease = await c.grant(2)
            assert lease.ttl == 2 and lease.id > 0
            key = prefix + "member"
            assert await c.create(key, b"me", lease.id) is True
            assert (await c.get(key)).lease == lease.id
            renewed_until = time.monotonic() + 3.0  # longer than the TTL: renewals count
            while time.monotonic() < renewed_until:
                assert await c.keepalive(lease.id) == 2
                await asyncio.sleep(0.5)  # the renewal period, not synchronisation
                assert await c.get(key) is not None
            stopped = time.monotonic()

            async def gone():
                return await c.get(key) is None
            await wait_until_async(gone, timeout=10.0, interval=0.05)
            assert time.monotonic() - stopped > 1.0  # it lived out (most of) its TTL
            with pytest.raises(EtcdError) as exc:
                await c.keepalive(lease.id)
            assert exc.value.lost and not exc.value.unavailable
            with pytest.raises(EtcdError) as exc:
                await c.put(key, b"x", lease.id)
            assert exc.value.lost
    run(main())


def test_revoke_deletes_leased_keys_at_once(etcd_cluster, prefix):
    async def main():
        async with client(etcd_cluster.endpoints) as c:
            lease = await c.grant(60)
            await c.put(prefix + "a", b"1", lease.id)
            await c.put(prefix + "b", b"2", lease.id)
            await c.put(prefix + "c", b"3")
            await c.revoke(lease.id)
            assert [k.key for k in (await c.get_prefix(prefix))[1]] == [prefix + "c"]
            await c.revoke(lease.id)  # already gone: fine
    run(main())


# ---------------------------------------------------------------- watch


def summary(events):
    return [(e.type, e.kv.key, e.kv.value) for e in events]


async def collect(c, prefix, start, want, got):
    """Events of the watch into ``got`` until there are ``want``."""
    async for batch in c.watch_prefix(prefix, start):
        assert all(isinstance(e, WatchEvent) for e in batch)
        got.extend(batch)
        if len(got) >= want:
            return


def test_watch_sees_puts_and_deletes_in_order(etcd_cluster, prefix):
    async def main():
        async with client(etcd_cluster.endpoints) as c:
            rev, _ = await c.get_prefix(prefix)
            got = []
            watch = asyncio.ensure_future(collect(c, prefix, rev + 1, 6, got))
            await c.put(prefix + "a", b"1")
            await c.put(prefix[:-1] + "-other", b"not watched")
            await c.put(prefix + "b", b"2")
            await c.delete(prefix + "a")
            assert await c.txn([], [Put(prefix + "c", b"3"), Delete(prefix + "b")])
            await c.put(prefix + "a", b"4")
            await asyncio.wait_for(watch, 10)
            assert summary(got) == [("PUT", prefix + "a", b"1"), ("PUT", prefix + "b", b"2"),
                                    ("DELETE", prefix + "a", b""), ("PUT", prefix + "c", b"3"),
                                    ("DELETE", prefix + "b", b""), ("PUT", prefix + "a", b"4")]
            revs = [e.kv.mod_revision for e in got]
            assert revs == sorted(revs) and revs[3] == revs[4]  # one txn, one revision
            # from an earlier revision: the history again; from 0: only what comes next
            again = []
            await asyncio.wait_for(collect(c, prefix, rev + 1, 6, again), 10)
            assert summary(again) == summary(got)
            later = []
            before = await c.put(prefix[:-1] + "-other", b"before the watch")
            watch = asyncio.ensure_future(collect(c, prefix, 0, 1, later))

            async def seen():  # write until the watch (from 'now') has started and sees it
                await c.put(prefix + "z", b"new")
                return bool(later)
            await wait_until_async(seen, timeout=10.0, interval=0.1)
            await asyncio.wait_for(watch, 10)
            assert summary(later)[:1] == [("PUT", prefix + "z", b"new")]
            assert later[0].kv.mod_revision > before  # no history
    run(main())


def test_watch_resumes_after_its_member_is_stopped(etcd_cluster, prefix):
    async def main():
        # The watch opens on member 0 (first, healthy); the writer uses the other two.
        async with client(etcd_cluster.endpoints) as w, client(etcd_cluster.endpoints[1:]) as c:
            rev, _ = await c.get_prefix(prefix)
            got = []
            watch = asyncio.ensure_future(collect(w, prefix, rev + 1, 10, got))
            for n in range(5):
                await c.put(prefix + "k%d" % n, b"%d" % n)

            async def five():
                return len(got) >= 5
            await wait_until_async(five, timeout=10.0, interval=0.05)
            t0 = time.monotonic()
            etcd_cluster.stop(0)
            for n in range(5, 10):
                await c.put(prefix + "k%d" % n, b"%d" % n)
            await asyncio.wait_for(watch, 10)
            print("watch resumed %.3f s after the stop" % (time.monotonic() - t0))
            assert summary(got) == [("PUT", prefix + "k%d" % n, b"%d" % n) for n in range(10)]
    run(main())


def test_watch_moves_off_a_frozen_member(etcd_cluster, prefix):
    """A frozen member keeps the stream open but sends nothing: the check of a quiet stream
    (a read through the same member) fails and the watch moves on, from where it was."""
    async def main():
        async with client(etcd_cluster.endpoints) as w, client(etcd_cluster.endpoints[1:]) as c:
            rev, _ = await c.get_prefix(prefix)
            got = []

            async def watch():
                async for batch in w.watch_prefix(prefix, rev + 1, check_interval=0.5):
                    got.extend(batch)
                    if len(got) >= 4:
                        return
            task = asyncio.ensure_future(watch())
            await c.put(prefix + "a", b"1")

            async def first():
                return len(got) >= 1
            await wait_until_async(first, timeout=10.0, interval=0.05)
            etcd_cluster.freeze(0)
            t0 = time.monotonic()
            for n in range(2, 5):
                await c.put(prefix + "a", b"%d" % n)
            await asyncio.wait_for(task, 10)
            print("watch moved off the frozen member in %.3f s" % (time.monotonic() - t0))
            assert [e.kv.value for e in got] == [b"1", b"2", b"3", b"4"]
    run(main())


CANCEL_TRIALS = 60
CANCEL_BOUND = 1.0   # a cancelled iteration ends in milliseconds; this is scheduling slack


def test_cancelling_a_task_that_iterates_a_watch_ends_it(etcd_cluster, prefix):
    """One ``cancel()`` ends a task iterating ``watch_prefix``, whatever the watch is awaiting
    at that moment: events arrive all the time and a quiet-stream check (a read) runs every
    few milliseconds. (``asyncio.wait_for`` before Python 3.12 lost a cancellation that came
    as the awaited read finished: about a third of these tasks went on iterating.)"""
    async def main():
        async with client(etcd_cluster.endpoints) as writer, client(etcd_cluster.endpoints) as c:
            stop = asyncio.Event()

            async def write():
                n = 0
                while not stop.is_set():
                    await writer.put(prefix + "k%d" % (n % 4), b"%d" % n)
                    n += 1

            async def iterate(seen):
                async for batch in c.watch_prefix(prefix, check_interval=0.005):
                    seen.append(len(batch))

            writes = asyncio.ensure_future(write())
            survivors = []
            try:
                for n in range(CANCEL_TRIALS):
                    seen = []
                    task = asyncio.ensure_future(iterate(seen))
                    await asyncio.sleep(0.002 * (n % 15))   # cancel at varied moments
                    task.cancel()
                    t0 = time.monotonic()
                    done, _ = await asyncio.wait({task}, timeout=CANCEL_BOUND)
                    if not done:
                        survivors.append((n, len(seen)))
                        while not task.done():    # end it anyway (repeated cancels)
                            task.cancel()
                            await asyncio.wait({task}, timeout=0.1)
                    elif not task.cancelled():
                        pytest.fail("trial %d: the watch task ended with %r instead of being "
                                    "cancelled" % (n, task.exception()))
                    assert time.monotonic() - t0 < CANCEL_BOUND + 5
            finally:
                stop.set()
                await asyncio.wait_for(writes, 10)
            assert survivors == [], ("%d of %d cancelled watch tasks went on iterating for "
                                     "over %s s (trial, batches seen): %s" % (
                                         len(survivors), CANCEL_TRIALS, CANCEL_BOUND,
                                         survivors[:10]))
    run(main(), bound=120)


def test_watch_from_a_compacted_revision_raises(etcd_cluster, prefix):
    import httpx

    async def main():
        async with client(etcd_cluster.endpoints) as c:
            first = await c.put(prefix + "a", b"1")
            last = await c.put(prefix + "a", b"2")
            async with httpx.AsyncClient(trust_env=False) as h:
                r = await h.post(etcd_cluster.endpoints[0] + "/v3/kv/compaction",
                                 json={"revision": str(last), "physical": True})
                assert r.status_code == 200, r.text
            with pytest.raises(EtcdError) as exc:
                async for _ in c.watch_prefix(prefix, first):
                    pass
            assert exc.value.compact_revision == last and not exc.value.unavailable
    run(main())


# ---------------------------------------------------------------- failures


def test_cut_proxy_fails_within_the_deadline_and_restore_heals(etcd_cluster, prefix):
    with TcpProxy(*etcd_cluster.address(0), listen_host="127.83.90.2") as proxy:
        async def main():
            async with client([proxy.address]) as c:
                await c.put(prefix + "k", b"1")
                rev, _ = await c.get_prefix(prefix)
                got = []
                watch = asyncio.ensure_future(collect(c, prefix, rev, 2, got))

                async def first():
                    return len(got) >= 1
                await wait_until_async(first, timeout=10.0, interval=0.05)
                proxy.cut()
                for op in (c.put(prefix + "k", b"2"), c.get(prefix + "k"), c.grant(5)):
                    t0 = time.monotonic()
                    with pytest.raises(EtcdError) as exc:
                        await op
                    took = time.monotonic() - t0
                    print("cut proxy: failed after %.3f s" % took)
                    assert exc.value.unavailable and took < TIMEOUT + SLACK
                    assert "cannot connect" in str(exc.value)
                proxy.restore()
                await c.put(prefix + "k", b"3")
                assert (await c.get(prefix + "k")).value == b"3"
                await asyncio.wait_for(watch, 10)  # the watch came back too
                assert summary(got) == [("PUT", prefix + "k", b"1"), ("PUT", prefix + "k", b"3")]
        run(main())


def test_one_member_stopped_still_works(etcd_cluster, prefix):
    etcd_cluster.stop(0)  # the member a fresh client tries first

    async def main():
        async with client(etcd_cluster.endpoints) as c:
            t0 = time.monotonic()
            await c.put(prefix + "k", b"1")
            assert time.monotonic() - t0 < TIMEOUT
            lease = await c.grant(5)
            assert await c.create(prefix + "l", b"x", lease.id)
            assert await c.keepalive(lease.id) == 5
            assert (await c.get(prefix + "k")).value == b"1"
            await c.revoke(lease.id)
    run(main())


def test_two_members_frozen_requests_fail_within_the_deadline(etcd_cluster, prefix):
    async def main():
        async with client(etcd_cluster.endpoints) as c:
            await c.put(prefix + "k", b"1")
            lease = await c.grant(30)
            etcd_cluster.freeze(1)
            etcd_cluster.freeze(2)
            try:
                for op in (c.put(prefix + "k", b"2"), c.get(prefix + "k"),
                           c.keepalive(lease.id), c.create(prefix + "new", b"x"), c.grant(5)):
                    t0 = time.monotonic()
                    with pytest.raises(EtcdError) as exc:
                        await op
                    took = time.monotonic() - t0
                    print("quorum lost: failed after %.3f s" % took)
                    assert exc.value.unavailable and TIMEOUT * 0.9 < took < TIMEOUT + SLACK
            finally:
                etcd_cluster.thaw(1)
                etcd_cluster.thaw(2)

            async def back():
                try:
                    return (await c.get(prefix + "k")) is not None
                except EtcdError:
                    return False
            await wait_until_async(back, timeout=20.0, interval=0.05)
    run(main())


# ---------------------------------------------------------------- bad answers


class FakeServer(socketserver.ThreadingTCPServer):
    """A loopback HTTP server answering each request with ``answer(path, body)``: an iterable
    of raw byte chunks (the whole HTTP answer), then closing the connection."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer, host=FAKE_HOST):
        self.answer = answer
        self.stopping = threading.Event()
        super().__init__((host, 0), FakeHandler)
        self.url = "http://%s:%d" % self.server_address
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self):
        self.stopping.set()
        self.shutdown()
        self.server_close()


class FakeHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                body += sock.recv(65536)
            path = head.split(b" ")[1].decode()
            for chunk in self.server.answer(path, body):
                sock.sendall(chunk)
        except OSError:
            pass


def http(status, body, headers=()):
    head = ["HTTP/1.1 %d X" % status, "Content-Length: %d" % len(body), "Connection: close"]
    head += ["%s: %s" % h for h in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def fixed(*chunks):
    return lambda path, body: list(chunks)


def endless(path, body):
    yield b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    while True:
        yield b'{"header": {"revision": "1"}, "kvs": [' + b'{"key": "YQ=="},' * 4000


def silent(server_stopping):
    def answer(path, body):
        server_stopping.wait(30)
        return []
    return answer


BAD_ANSWERS = {
    "not JSON": fixed(http(200, b"hello, not json")),
    "HTML 502": fixed(http(502, b"<html>bad gateway</html>", [("Content-Type", "text/html")])),
    "a JSON list": fixed(http(200, b"[1, 2, 3]")),
    "deep JSON": fixed(http(200, b"[" * 200000)),
    "not UTF-8": fixed(http(200, b"\xff\xfe{}")),
    "no header": fixed(http(200, b'{"kvs": []}')),
    "bad revision": fixed(http(200, b'{"header": {"revision": "abc"}}')),
    "bad fields": fixed(http(200, json.dumps({  # a good header, everything else wrong
        "header": {"revision": "5"}, "kvs": [{"key": "!!not base64"}], "ID": [], "TTL": "x",
        "succeeded": "yes", "responses": {}, "deleted": 1.5}).encode())),
    "bad header": fixed(http(200, b'{"header": [], "kvs": "x"}')),
    "gzip": fixed(http(200, b"\x1f\x8b\x08\x00", [("Content-Encoding", "gzip")])),
    "huge length": fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n{"),
    "huge stream": endless,
    "closes at once": fixed(),
    "unavailable": fixed(http(503, b'{"error": "etcdserver: request timed out", "code": 14}')),
    "no answer": None,
}

FAKE_TIMEOUT = 0.3


def every_call(c, prefix):
    return [c.put(prefix + "k", b"v"), c.get(prefix + "k"), c.get_prefix(prefix),
            c.delete(prefix + "k"), c.grant(5), c.keepalive(7), c.revoke(7),
            c.create(prefix + "k", b"v", 7), c.replace(prefix + "k", b"v", 0, 3),
            c.delete_if(prefix + "k", 3), c.txn([Compare.absent(prefix + "k")], [])]


@pytest.mark.parametrize("kind", sorted(BAD_ANSWERS))
def test_bad_answers_are_etcd_errors(kind):
    server = FakeServer(None)
    server.answer = BAD_ANSWERS[kind] or silent(server.stopping)
    try:
        async def main():
            async with client([server.url], timeout=FAKE_TIMEOUT, max_response=1 << 20) as c:
                t0 = time.monotonic()
                calls = every_call(c, "/p/")
                if kind == "bad fields":  # a put and a revoke only need the header
                    calls[0].close()
                    calls[6].close()
                    del calls[6], calls[0]
                results = await asyncio.gather(*calls, return_exceptions=True)
                took = time.monotonic() - t0
                for r in results:
                    assert isinstance(r, EtcdError), r
                    assert r.unavailable and not r.lost, r
                assert took < FAKE_TIMEOUT + 1.0  # eleven calls at once, retrying
                return str(results[0])
        print(kind, "->", run(main(), 10))
    finally:
        server.close()


def test_a_definite_etcd_error_ends_the_request_at_once():
    server = FakeServer(fixed(http(400, b'{"error": "etcdserver: key is not provided", '
                                        b'"message": "etcdserver: key is not provided", '
                                        b'"code": 3}')))
    try:
        async def main():
            async with client([server.url, server.url], timeout=5.0) as c:
                t0 = time.monotonic()
                with pytest.raises(EtcdError) as exc:
                    await c.put("k", b"v")
                assert time.monotonic() - t0 < 1.0
                assert exc.value.code == 3 and not exc.value.unavailable
                assert "key is not provided" in str(exc.value)
                with pytest.raises(EtcdError):  # the watch gives up too
                    async for _ in c.watch_prefix("/p/", 0):
                        pass
        run(main(), 10)
    finally:
        server.close()


def test_a_watch_on_a_bad_endpoint_keeps_trying_quietly():
    server = FakeServer(fixed(http(200, b"not json")))
    try:
        async def main():
            async with client([server.url], timeout=FAKE_TIMEOUT) as c:
                watch = c.watch_prefix("/p/", 0)
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(watch.__anext__(), 1.0)
        run(main(), 10)
    finally:
        server.close()


@pytest.mark.parametrize("kind", ["not JSON", "no answer", "closes at once"])
def test_a_bad_endpoint_is_skipped(etcd_cluster, prefix, kind):
    server = FakeServer(None)
    server.answer = BAD_ANSWERS[kind] or silent(server.stopping)
    try:
        async def main():
            async with client([server.url, etcd_cluster.endpoints[1]]) as c:
                t0 = time.monotonic()
                await c.put(prefix + "k", b"v")
                assert time.monotonic() - t0 < TIMEOUT
                assert (await c.get(prefix + "k")).value == b"v"  # now the good one first
        run(main())
    finally:
        server.close()


def test_a_write_applied_without_an_answer_is_recognised(etcd_cluster, prefix):
    """The first endpoint passes the request to etcd and closes without answering; the retry on
    the next endpoint fails its compare because of that write, which is recognised as ours."""
    import urllib.request

    target = etcd_cluster.endpoints[0]

    def apply_then_drop(path, body):
        req = urllib.request.Request(target + path, data=body, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        opener.open(req, timeout=5).read()
        return []

    server = FakeServer(apply_then_drop)
    try:
        async def main():
            async with client([etcd_cluster.endpoints[1]]) as plain:
                lease = await plain.grant(30)
                async with client([server.url, etcd_cluster.endpoints[1]]) as c:
                    key = prefix + "leader"
                    assert await c.create(key, b"me", lease.id) is True
                    c._preferred = 0  # the dropping endpoint first again
                    rev = (await plain.get(key)).mod_revision
                    assert await c.replace(key, b"me2", lease.id, rev) is True
                    c._preferred = 0
                    assert await plain.create(key, b"other") is False
                    rev = (await plain.get(key)).mod_revision
                    assert await c.delete_if(key, rev) is True
                    c._preferred = 0
                    assert await plain.get(key) is None
                    await plain.put(key, b"x")
                    assert await c.delete(key) is True
                    c._preferred = 0
                    with pytest.raises(EtcdError) as exc:  # a general txn cannot tell
                        await c.txn([Compare.absent(key)], [Put(key, b"y")])
                    assert exc.value.unavailable
                    assert (await plain.get(key)).value == b"y"
                await plain.revoke(lease.id)
        run(main())
    finally:
        server.close()


def test_client_arguments_are_checked():
    for bad in ([], ["127.0.0.1:2379"], ["http://h:1/v3"], ["ftp://h:1"]):
        with pytest.raises(ValueError):
            EtcdClient(bad)
    with pytest.raises(ValueError):
        EtcdClient(["http://127.0.0.1:2379"], timeout=0)
    with pytest.raises(ValueError):
        Compare("k", "MOD", b"bytes")
    with pytest.raises(ValueError):
        Compare("k", "NOPE", 1)


def test_cluster_control_and_proxy_basics(etcd_cluster):
    pids = [etcd_cluster.pid(i) for i in range(3)]
    assert all(pids) and len(set(pids)) == 3
    assert [e.split("//")[1].split(":")[0] for e in etcd_cluster.endpoints] == [
        PREFIX + "1", PREFIX + "2", PREFIX + "3"]
    print("etcd cluster started in %.3f s" % etcd_cluster.started_in)
    with TcpProxy("127.83.90.9", 9, listen_host="127.83.90.3") as proxy:  # nothing there
        proxy.cut()
        with pytest.raises(OSError):
            socket.create_connection(("127.83.90.3", proxy.port), timeout=1).close()
        proxy.restore()
        socket.create_connection(("127.83.90.3", proxy.port), timeout=1).close()


def test_proxy_forwards_small_writes_at_once(etcd_cluster):
    """Both sockets of a proxied connection have TCP_NODELAY: a request written in two parts
    (headers, then body) is not held for a delayed ACK (~40 ms per request without it)."""
    host, port = etcd_cluster.address(0)
    with TcpProxy(host, port, listen_host="127.83.90.4") as proxy:
        with socket.create_connection(("127.83.90.4", proxy.port), timeout=5) as s:
            body = b'{"key": "Lw=="}'
            s.sendall(b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                      b"json\r\nContent-Length: %d\r\n\r\n" % len(body))
            s.sendall(body)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")   # forwarded both ways
            with proxy._lock:   # the live pair of sockets (client side, etcd side)
                pairs = list(proxy._conns)
            assert len(pairs) == 1
            for sock in pairs[0]:
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
