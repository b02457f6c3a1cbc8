"""The sockets the client benchmark measures over: a connected pair with the replies written
before each timed batch, and a responder subprocess answering on loopback TCP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from _timing import CPU_CLOCK

class Buffered:
    """A connected pair -- ``client`` (blocking, no timeout, as callers use it) and ``peer`` --
    over an AF_UNIX socketpair or loopback TCP, with big socket buffers.

    The replies are written by the peer *before* each timed batch, in the same thread, so
    every recv of the timed loop finds its bytes already queued and nothing waits on the
    network or on another thread; the requests the client sends during the batch are read
    away by the peer after it. The batch size is capped so that a batch of replies and a
    batch of requests both fit in the buffers (nothing can block).
    """

    def __init__(self, transport: str, request: bytes):
        self.transport, self.request = transport, request
        if transport == "unix":
            self.client, self.peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.settimeout(10)
            self.client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            for s in (self.client, listener):  # before connecting: sets the TCP window
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            self.client.connect(listener.getsockname())
            self.peer, _ = listener.accept()
            listener.close()
        for s in (self.client, self.peer):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.peer.settimeout(30)   # a mistake shows up as an error, never as a hang
        self.sink = bytearray(1 << 20)
        self.request_capacity = self._capacity(self.client, self.peer, request, one_by_one=True)

    def close(self) -> None:
        self.client.close()
        self.peer.close()

    def drain(self, nbytes: int) -> None:
        """Read away ``nbytes`` the client sent."""
        self._read(self.peer, nbytes)

    def _read(self, sock, nbytes: int) -> None:
        view = memoryview(self.sink)
        while nbytes:
            got = sock.recv_into(view[:min(nbytes, len(view))])
            if not got:
                raise RuntimeError("connection closed while draining")
            nbytes -= got

    def _capacity(self, writer, reader, chunk: bytes, one_by_one: bool) -> int:
        """How many copies of ``chunk`` fit in flight from writer to reader (measured by
        writing without blocking until the kernel refuses), then everything is read away."""
        timeout = writer.gettimeout()
        writer.setblocking(False)
        sent = 0
        try:
            if one_by_one:  # each small send costs a whole socket buffer entry
                for _ in range(200_000):
                    sent += writer.send(chunk)
            else:
                blob = chunk * max(1, (64 << 20) // len(chunk))
                while True:
                    n = writer.send(blob)
                    sent += n
                    if n < len(blob):
                        break
        except BlockingIOError:
            pass
        finally:
            writer.settimeout(timeout)
        timeout = reader.gettimeout()
        reader.settimeout(30)
        try:
            self._read(reader, sent)
        finally:
            reader.settimeout(timeout)  # the client goes back to blocking, no timeout
        return sent // len(chunk)

    def max_batch(self, frame: bytes, limit: int = 1024) -> int:
        """The most calls per batch: a quarter of what fits in flight either way."""
        replies = self._capacity(self.peer, self.client, frame, one_by_one=False)
        return max(1, min(limit, replies // 4, self.request_capacity // 4) - 2)

    def runner(self, fn, frames, warm: int = 2):
        """``run(n)`` for a Row: write warm + n replies, make ``warm`` untimed calls (so that
        a row never starts on what the previous row left in a result cache), time n calls
        of ``fn(client)``, read the requests away."""
        client, peer, clock = self.client, self.peer, CPU_CLOCK
        blobs = {}

        def run(n):
            blob = blobs.get(n)
            if blob is None:
                blob = blobs[n] = b"".join(frames[i % len(frames)] for i in range(warm + n))
            peer.sendall(blob)
            for _ in range(warm):
                fn(client)
            t0 = clock()
            for _ in range(n):
                fn(client)
            elapsed = clock() - t0
            self.drain((warm + n) * len(self.request))
            return elapsed

        return run


RESPONDER = r"""
import socket, sys
reply = sys.stdin.buffer.read()
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
ls.settimeout(30)
print(ls.getsockname()[1], flush=True)
s, _ = ls.accept()
ls.close()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = bytearray(1 << 16)
view = memoryview(buf)
def read_exact(n):
    while n:
        got = s.recv_into(view[:n])
        if not got:
            return False
        n -= got
    return True
while read_exact(4):
    if not read_exact(int.from_bytes(buf[:4], "big")):
        break
    s.sendall(reply)
"""


class Live:
    """A responder subprocess on loopback TCP that answers every request frame with one
    canned reply; the client's socket is a plain connected ``socket.socket()``."""

    def __init__(self, frame: bytes):
        self.proc = subprocess.Popen([sys.executable, "-c", RESPONDER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.proc.stdin.write(frame)
        self.proc.stdin.close()
        port = int(self.proc.stdout.readline())
        self.client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.client.settimeout(None)

    def close(self) -> None:
        self.client.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def runner(self, fn):
        sock, clock = self.client, time.perf_counter

        def run(n):
            t0 = clock()
            for _ in range(n):
                fn(sock)
            return clock() - t0

        return run
