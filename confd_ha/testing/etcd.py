"""A real etcd cluster on loopback for tests, the demo and the benchmark, and a TCP proxy that
can cut a client off from it (docs/agent.md, "Tests").

:class:`EtcdCluster` starts ``n`` etcd members (the ``etcd`` binary: ``$ETCD``, ``PATH``,
``/usr/bin/etcd``; Debian's ``etcd-server``) on ``prefix`` + 1..n, each with a free client and
peer port on its own address, fast timings (heartbeat 50 ms, election timeout 500 ms) and its
data in a temporary directory, and waits until every member is healthy. Members are numbered
from 0 (``endpoints[i]`` is member i, on ``prefix`` + (i + 1)). It stops every process it
started by its PID (SIGTERM, then SIGKILL after a bound), thawing frozen ones first, on
:meth:`EtcdCluster.close`, on ``with`` exit and at interpreter exit.

:class:`TcpProxy` forwards a loopback port to one member; :meth:`TcpProxy.cut` closes every
connection and stops listening (a client's connect is refused at once) until
:meth:`TcpProxy.restore`.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import weakref
from typing import Any, List, Optional, Set, Tuple

from .stop import stop_process

__all__ = ["EtcdCluster", "EtcdNotFound", "TcpProxy", "find_etcd"]

STOP_GRACE = 5.0
"""Seconds a member may take to stop after SIGTERM before it is killed."""

_live: "weakref.WeakSet[EtcdCluster]" = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    for cluster in list(_live):
        try:
            cluster.close()
        except Exception:  # pragma: no cover - interpreter shutdown, best effort
            pass


class EtcdNotFound(RuntimeError):
    """No etcd binary."""


def find_etcd() -> str:
    """The etcd binary: ``$ETCD``, else ``etcd`` on ``PATH``, else ``/usr/bin/etcd``."""
    given = os.environ.get("ETCD")
    if given:
        if os.path.isfile(given) and os.access(given, os.X_OK):
            return given
        raise EtcdNotFound("$ETCD=%s is not an executable file; install it: apt-get install "
                           "etcd-server" % given)
    for path in (shutil.which("etcd"), "/usr/bin/etcd"):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise EtcdNotFound("no etcd binary ($ETCD, PATH, /usr/bin/etcd); install it: apt-get "
                       "install etcd-server")


def _free_ports(host: str, count: int) -> List[int]:
    """``count`` distinct ports that can be bound on ``host`` now (held until all are found)."""
    probes = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probes.append(s)
            s.bind((host, 0))
        return [s.getsockname()[1] for s in probes]
    finally:
        for s in probes:
            s.close()


def _healthy(url: str, timeout: float) -> bool:
    """etcd's ``/health`` on that client URL says true."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/health", timeout=timeout) as resp:
            return bool(json.loads(resp.read(4096)).get("health") == "true")
    except (OSError, ValueError, urllib.error.URLError):
        return False


class _Member:
    def __init__(self, index: int, ip: str, client_port: int, peer_port: int,
                 data_dir: str, log_path: str) -> None:
        self.name = "m%d" % (index + 1)
        self.ip = ip
        self.client_url = "http://%s:%d" % (ip, client_port)
        self.peer_url = "http://%s:%d" % (ip, peer_port)
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.frozen = False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    """``n`` etcd members on loopback (see the module docstring). ``data_dir``: where the
    members keep their data and logs (default: a temporary directory, removed on close; a
    given directory is kept)."""

    def __init__(self, n: int = 3, prefix: str = "127.82.0.", data_dir: Optional[str] = None,
                 *, etcd: Optional[str] = None, start_timeout: float = 30.0) -> None:
        if not 1 <= n <= 254:
            raise ValueError("n must be 1..254")
        self.binary = etcd or find_etcd()
        self.start_timeout = start_timeout
        ips = ["%s%d" % (prefix, i + 1) for i in range(n)]
        ports = [_free_ports(ip, 2) for ip in ips]  # (client, peer) on each address
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="confd-ha-etcd-")
        os.makedirs(self.data_dir, exist_ok=True)
        self.token = "confd-ha-%d-%s" % (os.getpid(), uuid.uuid4().hex[:12])
        self._members: List[_Member] = [
            _Member(i, ips[i], ports[i][0], ports[i][1],
                    os.path.join(self.data_dir, "m%d.etcd" % (i + 1)),
                    os.path.join(self.data_dir, "m%d.log" % (i + 1))) for i in range(n)]
        self._closed = False
        _live.add(self)
        self.started_in = 0.0
        """Seconds the start took (all members healthy)."""
        began = time.monotonic()
        try:
            for i in range(n):
                self._spawn(i, "new")
            self._wait_healthy(range(n), self.start_timeout)
        except BaseException:
            self.close()
            raise
        self.started_in = time.monotonic() - began

    # -- facts

    @property
    def endpoints(self) -> List[str]:
        """The client URLs, member 0 first."""
        return [m.client_url for m in self._members]

    def address(self, i: int) -> Tuple[str, int]:
        """(ip, client port) of member ``i``: ``TcpProxy(*cluster.address(i), ...)``."""
        m = self._members[i]
        return m.ip, int(m.client_url.rsplit(":", 1)[1])

    def pid(self, i: int) -> Optional[int]:
        """The PID of member ``i`` while it runs."""
        m = self._members[i]
        return m.proc.pid if m.proc is not None and m.running() else None

    def running(self, i: int) -> bool:
        return self._members[i].running()

    def healthy(self, i: int, timeout: float = 1.0) -> bool:
        """Member ``i`` says it is healthy (it has a leader and answers)."""
        return _healthy(self._members[i].client_url, timeout)

    def log(self, i: int, limit: int = 4000) -> str:
        """The end of member ``i``'s log."""
        try:
            with open(self._members[i].log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self._members[i].log_path) - limit))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- control

    def _spawn(self, i: int, state: str) -> None:
        m = self._members[i]
        initial = ",".join("%s=%s" % (x.name, x.peer_url) for x in self._members)
        argv = [self.binary, "--name", m.name, "--data-dir", m.data_dir,
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", initial, "--initial-cluster-state", state,
                "--initial-cluster-token", self.token,
                "--heartbeat-interval", "50", "--election-timeout", "500"]
        # etcd reads ETCD_* variables as flags: none of the caller's may change these.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        with open(m.log_path, "ab") as log:
            m.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, env=env, close_fds=True)
        m.frozen = False

    def _wait_healthy(self, which: Any, timeout: float) -> None:
        end = time.monotonic() + timeout
        waiting = list(which)
        while waiting:
            for i in list(waiting):
                m = self._members[i]
                if not m.running():
                    raise RuntimeError("etcd member %s exited (%s) before it was healthy; its "
                                       "log:\n%s" % (m.name, m.proc and m.proc.returncode,
                                                     self.log(i)))
                if _healthy(m.client_url, 0.5):
                    waiting.remove(i)
            if not waiting:
                return
            if time.monotonic() > end:
                raise TimeoutError("etcd members %s not healthy within %s s; the log of %s:\n%s"
                                   % ([self._members[i].name for i in waiting], timeout,
                                      self._members[waiting[0]].name, self.log(waiting[0])))
            time.sleep(0.05)

    def stop(self, i: int, timeout: float = STOP_GRACE) -> None:
        """Stops member ``i`` (thaw, SIGTERM, SIGKILL after ``timeout``); its data stays."""
        m = self._members[i]
        proc = m.proc
        if proc is None:
            return
        stop_process(proc, timeout, thaw=m.frozen)
        m.frozen = False

    def start(self, i: int, wait: bool = True, timeout: Optional[float] = None) -> None:
        """Starts member ``i`` again with its data (``--initial-cluster-state existing``);
        with ``wait``, until it is healthy (which needs a quorum)."""
        if self._closed:
            raise RuntimeError("the etcd cluster is closed")
        if self._members[i].running():
            raise RuntimeError("etcd member %s is running" % self._members[i].name)
        self._spawn(i, "existing")
        if wait:
            self._wait_healthy([i], self.start_timeout if timeout is None else timeout)

    def freeze(self, i: int) -> None:
        """SIGSTOP to member ``i``: it keeps its sockets but answers nothing."""
        m = self._members[i]
        if m.proc is None or not m.running():
            raise RuntimeError("etcd member %s is not running" % m.name)
        m.proc.send_signal(signal.SIGSTOP)
        m.frozen = True

    def thaw(self, i: int) -> None:
        """SIGCONT to member ``i``."""
        m = self._members[i]
        if m.proc is not None and m.running():
            m.proc.send_signal(signal.SIGCONT)
        m.frozen = False

    def close(self) -> None:
        """Stops every member, one after the other (a member stopped while its peers stop
        too can wait seconds for them), thawing frozen ones first; removes the data."""
        if self._closed:
            return
        self._closed = True
        error: Optional[BaseException] = None
        for i in range(len(self._members)):
            try:
                self.thaw(i)
            except OSError as e:  # pragma: no cover - already gone
                error = error or e
        for i, m in enumerate(self._members):
            try:
                self.stop(i)
            except BaseException as e:  # stop the others anyway; this one is killed
                error = error or e
                if m.proc is not None and m.proc.poll() is None:
                    m.proc.kill()
        _live.discard(self)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if error is not None:
            raise error

    def __enter__(self) -> "EtcdCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- TCP proxy


class TcpProxy:
    """Forwards ``listen_host``:``port`` to ``target_host``:``target_port`` (threads, one
    pair per connection). ``listen_port`` 0 (the default) takes a free port."""

    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1",
                 listen_port: int = 0, connect_timeout: float = 2.0) -> None:
        self.target = (target_host, int(target_port))
        self.listen_host = listen_host
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conns: Set[Tuple[socket.socket, socket.socket]] = set()
        self._cut = False
        self._closed = False
        self._listener: Optional[socket.socket] = self._listen(listen_port)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="TcpProxy:%d" % self.port)
        self._thread.start()

    @property
    def address(self) -> str:
        """``http://host:port`` of the proxy (for an etcd client)."""
        return "http://%s:%d" % (self.listen_host, self.port)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def _listen(self, port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((self.listen_host, port))
            s.listen(64)
        except BaseException:
            s.close()
            raise
        return s

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # pragma: no cover - closing
            pass

    def _accept_loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                listener = self._listener
            try:
                ready, _, _ = select.select(
                    [self._wake_r] + ([listener] if listener else []), [], [])
            except (OSError, ValueError):  # the listener was closed by cut() meanwhile
                continue
            if self._wake_r in ready:
                self._wake_r.recv(4096)
                continue
            if listener is None:
                continue
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut() meanwhile
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        pair = (client, upstream)
        with self._lock:
            if self._cut or self._closed:
                client.close()
                upstream.close()
                return
            self._conns.add(pair)
        try:
            upstream.settimeout(self.connect_timeout)
            upstream.connect(self.target)
            upstream.settimeout(None)
            # Forward each write at once: an HTTP request written in two parts (headers,
            # body) would otherwise wait for a delayed ACK (Nagle): ~40 ms per request.
            for s in pair:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            self._drop(pair)
            return
        with self._lock:
            alive = pair in self._conns
        if not alive:  # cut while connecting
            self._drop(pair)
            return
        back = threading.Thread(target=self._pump, args=(upstream, client, pair), daemon=True)
        back.start()
        self._pump(client, upstream, pair)
        back.join()
        self._drop(pair)

    def _pump(self, src: socket.socket, dst: socket.socket,
              pair: Tuple[socket.socket, socket.socket]) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
        except OSError:
            self._shutdown(pair)

    @staticmethod
    def _shutdown(pair: Tuple[socket.socket, socket.socket]) -> None:
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _drop(self, pair: Tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            self._conns.discard(pair)
        for s in pair:
            s.close()

    def cut(self) -> None:
        """Closes every live connection and stops listening: new connections are refused."""
        with self._lock:
            self._cut = True
            listener, self._listener = self._listener, None
            conns = list(self._conns)
            self._conns.clear()
        if listener is not None:
            # close() alone would leave it listening while the accept thread's select() holds
            # it; shutdown() stops it listening at once (Linux): connects are refused now.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:  # pragma: no cover
                pass
            listener.close()
        self._wake()
        for pair in conns:
            self._shutdown(pair)

    def restore(self) -> None:
        """Listens again on the same port; connections are forwarded again."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the proxy is closed")
            if self._listener is None:
                self._listener = self._listen(self.port)
            self._cut = False
        self._wake()

    def close(self) -> None:
        """Cuts everything and stops the proxy's thread."""
        self.cut()
        with self._lock:
            self._closed = True
        self._wake()
        self._thread.join(5)
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
