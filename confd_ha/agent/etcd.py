"""An asyncio etcd v3 client over etcd's JSON gateway (docs/agent.md).

etcd (3.4 and later) serves its v3 API as JSON under ``/v3/`` on its client URLs
(:mod:`confd_ha.agent._etcdwire` has the format); this client speaks that, through ``httpx``.

Every request has one deadline (``timeout``). The endpoints are tried in turn within it,
starting with the one that answered last; an endpoint that cannot be reached, does not answer
in its share of the time, answers garbage or says it is unavailable is skipped. A request
fails (:class:`EtcdError` with ``unavailable`` set) only when no endpoint answered in time; a
definite answer from etcd that is an error (an invalid argument, an unknown lease) ends the
request at once. Answers are bounded (``max_response`` bytes).

A retried write may have been applied by the attempt that got no answer. ``create``,
``replace`` and ``delete_if`` resolve this from the current value (read in the same txn): a
failed compare after such an attempt counts as success when the key now holds exactly what
was written (or, for ``delete_if``, is gone). :meth:`EtcdClient.txn` cannot tell and raises
:class:`EtcdError` (``unavailable``) instead.

Cancelling the task that awaits a call or iterates a watch ends it at once: the deadlines use
:func:`confd_ha.agent._timeout.within`, not ``asyncio.wait_for``, which before Python 3.12
can lose the cancellation.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import (Any, AsyncGenerator, Callable, Dict, List, Optional, Sequence, Tuple,
                    TypeVar, Union)

import httpx

from . import _etcdwire as w
from ._timeout import within
from ._etcdwire import (DEFAULT_MAX_RESPONSE, KV, Compare, Delete, EtcdError, Lease, Put,
                        WatchEvent)

__all__ = ["EtcdError", "EtcdClient", "Lease", "KV", "WatchEvent", "Compare", "Put", "Delete",
           "DEFAULT_MAX_RESPONSE"]

for _public in (EtcdError, Lease, KV, WatchEvent, Compare, Put, Delete):
    _public.__module__ = __name__  # they are this module's (defined with the wire format)

T = TypeVar("T")
Doc = Dict[str, Any]


class _Stream:
    """An open watch stream: the response, the queue its pump fills, the first message."""

    def __init__(self, resp: httpx.Response, queue: "asyncio.Queue[Any]") -> None:
        self.resp = resp
        self.queue = queue
        self.pump: Optional["asyncio.Future[None]"] = None
        self.first: Doc = {}

    async def close(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
        await self.resp.aclose()

    def discard(self) -> None:
        """Close it in the background (it was opened for a caller that was cancelled)."""
        asyncio.ensure_future(self.close()).add_done_callback(
            lambda t: t.cancelled() or t.exception())


# ---------------------------------------------------------------- the client


class EtcdClient:
    """etcd v3 over its JSON gateway. ``endpoints``: client URLs (``"http://127.0.0.1:2379"``);
    ``timeout``: the deadline of each request, in seconds, over all endpoints."""

    def __init__(self, endpoints: Sequence[str], *, timeout: float = 1.0,
                 max_response: int = DEFAULT_MAX_RESPONSE) -> None:
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        self.endpoints: List[str] = [e.rstrip("/") for e in endpoints]
        if not self.endpoints:
            raise ValueError("no etcd endpoints")
        for e in self.endpoints:
            if not re.fullmatch(r"https?://[^/\s]+", e):
                raise ValueError("not an etcd client URL (http://host:port): %r" % e)
        if not timeout > 0:
            raise ValueError("timeout must be > 0")
        self.timeout = float(timeout)
        self.max_response = int(max_response)
        self._preferred = 0
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), trust_env=False,
                                       follow_redirects=False)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "EtcdClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing

    def _order(self) -> List[int]:
        n = len(self.endpoints)
        return [(self._preferred + k) % n for k in range(n)]

    async def _exchange(self, endpoint: str, path: str, body: Doc, first_line: bool) -> Doc:
        data = json.dumps(body).encode()
        try:
            async with self._http.stream("POST", endpoint + path, content=data,
                                         headers=w.HEADERS) as resp:
                raw = await w.read_body(resp, self.max_response, first_line)
                status = resp.status_code
        except (httpx.HTTPError, OSError) as e:
            raise w.transport(e) from None
        return w.decode(raw, status)

    async def _call(self, path: str, body: Doc, parse: Callable[[Doc, bool], T],
                    first_line: bool = False) -> T:
        """One request: the endpoints in turn within the deadline. ``parse(doc, retried)``
        turns the answer into the result; ``retried``: an earlier attempt may have been
        applied. A parse error means a bad answer (the next endpoint is tried)."""
        n = len(self.endpoints)
        deadline = time.monotonic() + self.timeout
        why: Dict[str, str] = {}
        retried = False
        rounds = 0
        while True:
            for k, idx in enumerate(self._order()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # The endpoint that answered last gets half the time, the others share it.
                share = left / 2 if rounds == 0 and k == 0 and n > 1 else left / (n - k)
                endpoint = self.endpoints[idx]
                try:
                    doc = await within(self._exchange(endpoint, path, body, first_line), share)
                    result = parse(doc, retried)
                except asyncio.TimeoutError:  # (a last short share keeps an earlier why)
                    why.setdefault(endpoint, "no answer within %.3f s" % share)
                    retried = True
                    continue
                except w.Attempt as e:
                    why[endpoint], retried = str(e), retried or e.sent
                    continue
                except (KeyError, IndexError, TypeError, ValueError) as e:
                    why[endpoint], retried = "unexpected answer (%s: %s)" % (
                        type(e).__name__, e), True
                    continue
                self._preferred = idx
                return result
            rounds += 1
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(0.05, left))
        raise EtcdError("etcd %s: no usable answer within %.3g s (%s)" % (
            path, self.timeout, "; ".join("%s: %s" % kv for kv in why.items())),
            unavailable=True)

    # -- leases

    async def grant(self, ttl: int) -> Lease:
        """A new lease of ``ttl`` seconds."""
        def parse(doc: Doc, retried: bool) -> Lease:
            w.revision(doc)
            return Lease(id=w.to_int(doc["ID"]), ttl=w.to_int(doc["TTL"]))
        return await self._call("/v3/lease/grant", {"TTL": int(ttl)}, parse)

    async def keepalive(self, lease_id: int) -> int:
        """Renews the lease; returns its remaining TTL (seconds). A lease that is gone raises
        :class:`EtcdError` with ``lost`` set."""
        def parse(doc: Doc, retried: bool) -> int:
            w.revision(doc)
            if w.to_int(doc.get("ID")) != lease_id:
                raise ValueError("keepalive answer for another lease: %r" % doc.get("ID"))
            ttl = w.to_int(doc.get("TTL"))
            if ttl <= 0:
                raise EtcdError("lease %d expired or was revoked" % lease_id, lost=True)
            return ttl
        return await self._call("/v3/lease/keepalive", {"ID": str(lease_id)}, parse,
                                first_line=True)

    async def revoke(self, lease_id: int) -> None:
        """Revokes the lease (etcd deletes its keys at once); a lease already gone is fine."""
        try:
            await self._call("/v3/lease/revoke", {"ID": str(lease_id)},
                             lambda doc, retried: w.revision(doc))
        except EtcdError as e:
            if not e.lost:
                raise

    # -- keys

    async def get(self, key: str) -> Optional[KV]:
        def parse(doc: Doc, retried: bool) -> Optional[KV]:
            w.revision(doc)
            kvs = w.kvs_of(doc)
            return kvs[0] if kvs else None
        return await self._call("/v3/kv/range", {"key": w.b64e(w.kb(key))}, parse)

    async def get_prefix(self, prefix: str) -> Tuple[int, List[KV]]:
        """(the revision of the read, the keys starting with ``prefix`` in key order)."""
        key, end = w.prefix_range(prefix)
        return await self._call("/v3/kv/range", {"key": key, "range_end": end},
                                lambda doc, retried: (w.revision(doc), w.kvs_of(doc)))

    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        """Writes the key (under ``lease`` if not 0); returns the revision of the write."""
        return await self._call("/v3/kv/put", w.put_body(key, value, lease),
                                lambda doc, retried: w.revision(doc))

    async def delete(self, key: str) -> bool:
        """Deletes the key. True if it existed (after a retry: it is gone, perhaps deleted by
        the attempt that got no answer)."""
        def parse(doc: Doc, retried: bool) -> bool:
            w.revision(doc)
            return w.to_int(doc.get("deleted")) > 0 or retried
        return await self._call("/v3/kv/deleterange", {"key": w.b64e(w.kb(key))}, parse)

    async def _guarded(self, key: str, compare: Doc, success: Doc,
                       done: Callable[[Optional[KV]], bool]) -> bool:
        """txn: if ``compare`` then ``success`` else read ``key``. On a failed compare after an
        attempt that may have been applied, ``done(current)`` says whether it was."""
        body = {"compare": [compare], "success": [success],
                "failure": [{"request_range": {"key": w.b64e(w.kb(key))}}]}

        def parse(doc: Doc, retried: bool) -> bool:
            w.revision(doc)
            if w.succeeded(doc):
                return True
            responses = doc.get("responses", [])
            if not isinstance(responses, list) or len(responses) != 1:
                raise ValueError("txn answer without the read of the failure branch")
            kvs = w.kvs_of(w.as_dict(w.as_dict(responses[0])["response_range"]))
            return retried and done(kvs[0] if kvs else None)
        return await self._call("/v3/kv/txn", body, parse)

    async def create(self, key: str, value: bytes, lease: int = 0) -> bool:
        """Writes the key only if it does not exist; True if written."""
        return await self._guarded(
            key, Compare.absent(key).json(), Put(key, value, lease).json(),
            lambda kv: kv is not None and kv.value == value and kv.lease == lease)

    async def replace(self, key: str, value: bytes, lease: int, mod_revision: int) -> bool:
        """Writes the key only if it was last modified at ``mod_revision``; True if written."""
        return await self._guarded(
            key, Compare.mod(key, mod_revision).json(), Put(key, value, lease).json(),
            lambda kv: (kv is not None and kv.value == value and kv.lease == lease
                        and kv.mod_revision > mod_revision))

    async def delete_if(self, key: str, mod_revision: int) -> bool:
        """Deletes the key only if it was last modified at ``mod_revision``; True if deleted."""
        return await self._guarded(key, Compare.mod(key, mod_revision).json(),
                                   Delete(key).json(), lambda kv: kv is None)

    async def txn(self, compare: Sequence[Compare], success: Sequence[Union[Put, Delete]],
                  failure: Sequence[Union[Put, Delete]] = ()) -> bool:
        """A general txn; True if every compare held (and ``success`` was applied). Raises
        :class:`EtcdError` (``unavailable``) when the compares failed after an attempt that
        may have been applied: the outcome is unknown then."""
        body = {"compare": [c.json() for c in compare], "success": [o.json() for o in success],
                "failure": [o.json() for o in failure]}

        def parse(doc: Doc, retried: bool) -> bool:
            w.revision(doc)
            if w.succeeded(doc):
                return True
            if retried:
                raise EtcdError("etcd txn: outcome unknown (an attempt that got no answer may "
                                "have been applied)", unavailable=True)
            return False
        return await self._call("/v3/kv/txn", body, parse)

    # -- watch

    def watch_prefix(self, prefix: str, start_revision: int = 0, *,
                     check_interval: float = 2.0) -> AsyncGenerator[List[WatchEvent], None]:
        """The changes of the keys under ``prefix`` from ``start_revision`` on (0: from now),
        as batches of events in revision order, for as long as it is iterated.

        A broken stream is re-established (on the next endpoint) from the revision after the
        last event delivered, so no event is lost or repeated; when no endpoint is reachable
        it keeps trying. A stream quiet for ``check_interval`` seconds is checked with a read
        through the same endpoint (a member cut off from the quorum keeps a watch open but
        sees no changes), and moved when the read fails. Raises :class:`EtcdError` when the
        revision to resume from was compacted (``compact_revision``) or etcd refuses it.
        ``aclose()`` it (or cancel the task iterating it) to end the stream."""
        return self._watch(prefix, start_revision, check_interval)

    async def _watch(self, prefix: str, start_revision: int,
                     check_interval: float) -> AsyncGenerator[List[WatchEvent], None]:
        key, end = w.prefix_range(prefix)
        next_rev = start_revision
        pause = 0.05
        while True:
            create: Doc = {"key": key, "range_end": end, "progress_notify": True}
            if next_rev:
                create["start_revision"] = str(next_rev)
            try:
                idx, stream = await self._open_watch({"create_request": create})
            except EtcdError as e:
                if not e.unavailable:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            item: Any = stream.first
            try:
                while True:
                    if isinstance(item, EtcdError):
                        raise item
                    if isinstance(item, w.Attempt):
                        break
                    try:
                        batch, created = self._watch_message(item, next_rev)
                    except (KeyError, IndexError, TypeError, ValueError):
                        break
                    if created and not next_rev:
                        next_rev = created + 1
                    if batch:
                        next_rev = max(next_rev, batch[-1].kv.mod_revision + 1)
                        pause = 0.05
                        yield batch
                    while True:
                        try:
                            item = await within(stream.queue.get(), check_interval)
                            break
                        except asyncio.TimeoutError:
                            if not await self._alive(idx, key, end):
                                item = w.Attempt("the endpoint of the watch does not answer")
                                break
            finally:
                await stream.close()
            if self._preferred == idx:
                self._preferred = (idx + 1) % len(self.endpoints)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _watch_message(self, msg: Doc, next_rev: int) -> Tuple[List[WatchEvent], int]:
        """(events, created header revision or 0) of one watch message."""
        if msg.get("canceled"):
            compacted = w.to_int(msg.get("compact_revision"))
            if compacted:
                raise EtcdError("etcd watch from revision %d: compacted (revisions from %d on "
                                "are kept)" % (next_rev, compacted), compact_revision=compacted)
            raise EtcdError("etcd canceled the watch: %s" % msg.get("cancel_reason", "?"))
        created = w.revision(msg) if msg.get("created") else 0
        events = msg.get("events", [])
        if not isinstance(events, list):
            raise TypeError("events is not a list")
        batch = []
        for ev in events:
            kind = w.as_dict(ev).get("type", "PUT")
            if kind not in ("PUT", "DELETE"):
                raise ValueError("unknown event type %r" % kind)
            event = WatchEvent(type=kind, kv=w.kv_of(ev["kv"]))
            if event.kv.mod_revision >= next_rev:  # never one already delivered
                batch.append(event)
        return batch, created

    async def _open_watch(self, body: Doc) -> Tuple[int, _Stream]:
        """The watch stream on the first endpoint that confirms it, within the deadline."""
        deadline = time.monotonic() + self.timeout
        why: Dict[str, str] = {}
        for k, idx in enumerate(self._order()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            share = left / (len(self.endpoints) - k)
            endpoint = self.endpoints[idx]
            try:
                stream = await within(self._start(endpoint, body), share,
                                      discard=_Stream.discard)
            except asyncio.TimeoutError:
                why[endpoint] = "no answer within %.3f s" % share
                continue
            except w.Attempt as e:
                why[endpoint] = str(e)
                continue
            self._preferred = idx
            return idx, stream
        raise EtcdError("etcd watch: no usable answer within %.3g s (%s)" % (
            self.timeout, "; ".join("%s: %s" % kv for kv in why.items())), unavailable=True)

    async def _start(self, endpoint: str, body: Doc) -> _Stream:
        """Opens the stream and waits for its first message, which must be ``created``."""
        request = self._http.build_request(
            "POST", endpoint + "/v3/watch", content=json.dumps(body).encode(),
            headers=w.HEADERS, timeout=httpx.Timeout(self.timeout, read=None))
        try:
            resp = await self._http.send(request, stream=True)
        except (httpx.HTTPError, OSError) as e:
            raise w.transport(e) from None
        stream = _Stream(resp, asyncio.Queue(maxsize=16))
        try:
            if resp.status_code != 200:
                raw = await w.read_body(resp, 65536, False)
                w.decode(raw, resp.status_code)
                raise w.Attempt("watch answered HTTP %d" % resp.status_code)
            stream.pump = asyncio.ensure_future(self._pump(resp, stream.queue))
            first = await stream.queue.get()
            if isinstance(first, Exception):
                raise first
            stream.first = first
            if not w.as_dict(first).get("created"):
                raise w.Attempt("the watch stream did not start with 'created'")
            w.revision(first)
        except (httpx.HTTPError, OSError) as e:
            await stream.close()
            raise w.transport(e) from None
        except (KeyError, TypeError, ValueError) as e:
            await stream.close()
            raise w.Attempt("unexpected watch answer (%s)" % e) from None
        except BaseException:
            await stream.close()
            raise
        return stream

    async def _pump(self, resp: httpx.Response, queue: "asyncio.Queue[Any]") -> None:
        """Reads the stream: each message (a line) decoded onto the queue, then a final
        w.Attempt (end or failure) or EtcdError (etcd refused the watch)."""
        buf = bytearray()
        try:
            async for chunk in resp.aiter_raw():
                buf += chunk
                while b"\n" in buf:
                    line = bytes(buf[:buf.index(b"\n")])
                    del buf[:len(line) + 1]
                    if line.strip():
                        await queue.put(w.decode(line, 200))
                if len(buf) > self.max_response:
                    raise w.Attempt("watch message larger than %d bytes" % self.max_response)
            if buf.strip():
                await queue.put(w.decode(bytes(buf), 200))
            await queue.put(w.Attempt("watch stream ended"))
        except (w.Attempt, EtcdError) as e:
            await queue.put(e)
        except (httpx.HTTPError, OSError) as e:
            await queue.put(w.transport(e))

    async def _alive(self, idx: int, key: str, end: str) -> bool:
        """A linearizable read through endpoint ``idx`` answers within the deadline."""
        body = {"key": key, "range_end": end, "count_only": True}
        try:
            doc = await within(
                self._exchange(self.endpoints[idx], "/v3/kv/range", body, False), self.timeout)
            w.revision(doc)
            return True
        except (asyncio.TimeoutError, w.Attempt, EtcdError, KeyError, TypeError, ValueError):
            return False
