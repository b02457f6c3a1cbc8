"""Emulated nodes that can join each other: :class:`Cluster`, the one cluster of the
runner, the pytest fixtures (``ha_cluster``) and the tests.

::

    import confd_ha as ha
    from confd_ha.testing.cluster import Cluster

    with Cluster(3, tick_timeout=0.5) as c:        # 127.0.0.1..3, one shared free HA port
        s = c[0].connect_ha("secret")               # the real client, to node 1's IPC port
        ha.beprimary(s, "n1")
        c[0].commit([("set", "/sys/host", "a")])    # the control interface, synchronously
        c[1].freeze()
    # every node stopped, every socket closed, the thread joined
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Sequence, Union

from .. import STATE_PRIMARY
from .loop import DEFAULT_CALL_TIMEOUT, STOP_GRACE, EmulatorThread, stop_node
from .node import SyncNode
from .ports import PortReservation, loopback_addresses

if TYPE_CHECKING:
    from ..emulator.node import Node

__all__ = ["Cluster"]

log = logging.getLogger("confd_ha.testing")

class Cluster:
    """``n`` emulated nodes on PREFIX(base) … PREFIX(base+n-1) sharing one HA port.

    Each node gets a free IPC port; the HA port is reserved on all the addresses for the
    cluster's lifetime (:class:`PortReservation`). ``data_dirs`` gives one directory per node
    (None: in-memory datastores). ``names`` are the nodes' log labels (default n1, n2, …).
    Further ``NodeConfig`` fields apply to every node. Without ``emulator`` the cluster owns
    its own :class:`EmulatorThread`. A context manager; :meth:`stop` is idempotent.

    ``n=0`` with ``reserve=K`` starts empty, the HA port chosen on PREFIX1 … PREFIXK, for
    nodes placed one by one with :meth:`add`. ``hold=False`` releases the HA port once it is
    chosen (for tests that bind it themselves). ``call_timeout`` is the default timeout of
    the cluster's own thread. :meth:`make_proxy` makes each node's :class:`SyncNode`;
    subclasses give theirs.
    """

    def __init__(self, n: int = 3, *, tick_timeout: float = 1.0,
                 data_dirs: Optional[Sequence[Any]] = None, base: int = 1,
                 prefix: str = "127.0.0.", names: Optional[Sequence[str]] = None,
                 control: bool = False, emulator: Optional[EmulatorThread] = None,
                 start: bool = True, timeout: Optional[float] = None, reserve: int = 0,
                 hold: bool = True, call_timeout: Optional[float] = DEFAULT_CALL_TIMEOUT,
                 **config: Any) -> None:
        if n < 1 and reserve < 1:
            raise ValueError("a cluster needs at least one node")
        if data_dirs is not None and len(data_dirs) != n:
            raise ValueError("data_dirs must name one directory per node")
        if names is not None and len(names) != n:
            raise ValueError("names must name every node")
        self.prefix = prefix
        self.tick_timeout = tick_timeout
        self.addresses = loopback_addresses(n, base, prefix) if n else []
        self.names = list(names) if names is not None else ["n%d" % (i + 1) for i in range(n)]
        self.nodes: List[SyncNode] = []
        self._own = emulator is None
        self.emulator = emulator if emulator is not None else EmulatorThread(
            timeout=call_timeout)
        self.reservation: Optional[PortReservation] = None
        self._hold = False
        self._stopped = False
        try:
            held = self.addresses or loopback_addresses(reserve, 1, prefix)
            self.reservation = PortReservation(held, port=config.pop("ha_port", None))
            self.ha_port = self.reservation.port
            self._hold = hold
            if not hold:
                self.reservation.close()
            self.config = config
            for i, address in enumerate(self.addresses):
                fields = dict(config, name=self.names[i], ipc_address=address, ipc_port=0,
                              ha_port=self.ha_port, tick_timeout=tick_timeout,
                              data_dir=None if data_dirs is None else str(data_dirs[i]))
                self.nodes.append(self.emulator.add_node(start=start, control=control,
                                                         timeout=timeout,
                                                         proxy=self.make_proxy, **fields))
        except BaseException:
            self.stop()
            raise

    def add(self, name: str, address: Union[int, str], *, start: bool = True,
            control: bool = False, **config: Any) -> SyncNode:
        """One more node ``name`` at ``address`` (PREFIX+address for an int) with the
        cluster's HA port, tick timeout and configuration unless ``config`` says otherwise;
        a held HA port is held on ``address`` too."""
        if isinstance(address, int):
            address = "%s%d" % (self.prefix, address)
        fields = dict(self.config, tick_timeout=self.tick_timeout, ha_port=self.ha_port,
                      ipc_port=0)
        fields.update(config)
        if self._hold and self.reservation is not None and fields["ha_port"] == self.ha_port:
            self.reservation.add(address)
        node = self.emulator.add_node(start=start, control=control, name=name,
                                      ipc_address=address, proxy=self.make_proxy, **fields)
        self.nodes.append(node)
        self.addresses.append(address)
        self.names.append(name)
        return node

    def make_proxy(self, node: "Node") -> SyncNode:
        """The synchronous face of a new node of this cluster."""
        return SyncNode(self.emulator, node)

    def __getitem__(self, i: int) -> SyncNode:
        return self.nodes[i]

    def __iter__(self) -> Iterator[SyncNode]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every node (and the thread, if the cluster owns it); release the HA port."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._own:
                self.emulator.stop()
            else:
                for node in self.nodes:
                    if not self.emulator.running:
                        break
                    try:
                        self.emulator.run(node.close_control())
                        self.emulator.run(stop_node(node.node, STOP_GRACE),
                                          timeout=STOP_GRACE + 5)
                    except Exception:
                        log.exception("stopping %r failed", node)
        finally:
            if self.reservation is not None:
                self.reservation.close()

    def primary(self) -> Optional[SyncNode]:
        """The node that is PRIMARY right now (None if there is none)."""
        for node in self.nodes:
            if node.state == STATE_PRIMARY:
                return node
        return None

    def form(self, token: str, primary: int = 0, ids: Optional[Sequence[str]] = None,
             timeout: float = 10.0) -> None:
        """Make node ``primary`` PRIMARY and every other node its SECONDARY, through the real
        client (one short-lived control socket per node, token ``token``); returns once every
        secondary has been listed by the primary. Node ids default to the node names."""
        import confd_ha

        ids = list(ids) if ids is not None else list(self.names)
        p = self.nodes[primary]
        with p.connect_ha(token, timeout) as s:
            confd_ha.beprimary(s, ids[primary])
        for i, node in enumerate(self.nodes):
            if i == primary:
                continue
            with node.connect_ha(token, timeout) as s:
                confd_ha.besecondary(s, ids[i], ids[primary], p.ipc_address if
                                     p.ha_address in ("0.0.0.0", "::") else p.ha_address, 1)
        want = {ids[i].encode() for i in range(len(self.nodes)) if i != primary}
        end = time.monotonic() + timeout
        while {nid for nid, _ in p.status()[1]} != want:
            if time.monotonic() > end:
                raise TimeoutError("secondaries did not all arrive at %s" % p.name)
            time.sleep(0.01)

    def __repr__(self) -> str:
        return "<Cluster %s HA port %s>" % (", ".join(self.addresses), getattr(self, "ha_port", "?"))
