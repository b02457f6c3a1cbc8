"""Emulated ConfD/NSO HA node: IPC server, HA state machine, inter-node links, datastore, events.

An emulated node speaks the real IPC protocol on its IPC port (HA control sockets, client type
17, and event-notification sockets, type 11: ``docs/wire-protocol.md``), so the real client --
``confd_ha`` or Cisco's own ``_confd.ha`` -- can drive it. Between themselves emulated nodes use
the project's own peer protocol (``docs/peer-protocol.md``). Behaviour follows
``docs/ha-behaviour.md`` (the B-nn rules), as measured on real ConfD 8.2.5.

Async API (everything runs on one asyncio loop; call it from that loop's thread)::

    from confd_ha.emulator import Node, NodeConfig

    node = Node(NodeConfig(name="n1", ipc_address="127.0.0.2", ipc_port=0,
                           ha_port=14569, tick_timeout=0.2))
    await node.start()          # listens on 127.0.0.2:<node.ipc_port>; state NONE
    ...                         # clients: ha.connect(sock, token, "127.0.0.2", node.ipc_port)
    txid = await node.commit([("set", "/sys/host", "a")])
    await node.stop()

``NodeConfig`` (``confd_ha.emulator.config``) fields: ``name`` (log label), ``flavour``
("confd" | "nso": default IPC port 4565 | 4569, HA port 4569 | 4570), ``ipc_address``,
``ipc_port`` (0 = any free port), ``ipc_path`` (extra AF_UNIX listener), ``ha_address``
(default: ``ipc_address``; also the source address of outgoing joins, B-12), ``ha_port``
(one port for the whole cluster, B-12), ``tick_timeout`` (seconds, default 20, 0 disables),
``data_dir`` (None: in memory), ``ipc_access_file`` (None: no IPC access check),
``start_phase`` (0 or 2), ``accepted_proto_vsns`` ((lo, hi) or None), ``proto_vsn``, ``vsn``,
``maxdepth``, ``maxkeylen`` (the 9-byte hello reply), ``ha_vsn``, ``fxs_fp``,
``ha_config_fp`` (join compatibility checks), ``init_timeout`` (30 s), ``token_timeout``
(2 s), ``subscribe_timeout`` (5 s) (the IPC deadlines, docs/conformance-ipc.md),
``confd_quirks`` (False), ``max_frame`` (16 MiB), ``event_write_block`` (15 s, B-28).

``Node(config)`` (or ``Node(**config_fields)``), control interface (B-33):

* lifecycle -- ``await start()``, ``await stop()`` (peers get a goodbye: they see HA_CLOSED),
  ``await kill()`` (every socket closed abruptly), ``await restart(kill=False)`` (back in NONE
  with an empty token and the configured start phase; data and transaction id kept -- an
  in-memory datastore survives restarts of the same ``Node`` object); ``running``;
  ``ipc_port`` (actual port; with ``ipc_port=0`` a restart keeps the first one), ``ipc_address``.
* provoking situations -- ``await set_start_phase(n)`` (0 → 1 → 2, one step at a time),
  ``await set_upgrade(flag)`` (beprimary/besecondary fail with HA_WITH_UPGRADE 47),
  ``await freeze()`` / ``await thaw()``, ``await partition(peer_ip)`` / ``await heal(peer_ip=None)``.
  Freeze holds *all* inter-node traffic (reads, writes, ticks and even closes; sockets stay
  open) and suspends the node's own dead-peer detection; peers see HA_NOTICK after 3 ticks.
  IPC, orders and the control interface keep working while frozen; what an order sends to
  peers is held back until ``thaw()``. A partition holds the traffic with one peer address
  both ways while both sides keep detecting silence (both see HA_NOTICK); a join towards a
  partitioned address times out with HA_CONNECT. Held data flows again on thaw/heal (like TCP
  after a short outage); a connection that was declared dead meanwhile is closed then.
  Partitions survive ``restart()``, a freeze does not. A commit on a frozen primary returns
  only after the thaw (the frozen node does not time out its own secondaries).
* datastore -- ``await commit(changes) -> txid`` (``[("set", path, value) | ("delete", path)]``;
  refused on SECONDARY/relay with ``confd_ha.error.Error`` BADSTATE 17, B-29; on a PRIMARY it
  returns once every admitted secondary acknowledged it or was declared dead),
  ``get(path)``, ``items(prefix="/")``, ``txid``.
* inspection -- ``state`` (1..4), ``state_name``, ``node_id`` (node-id term of the last
  successful beprimary/besecondary), ``status()`` (the status reply's ``(state, [(nodeid, addr)])``
  terms), ``peers`` (direct peers: dicts with role/nodeid/address), ``subscribers``,
  ``joining``, ``start_phase``, ``upgrade``, ``frozen``, ``partitions``, ``decisions`` (bounded
  list of human-readable HA decisions, oldest first; never the token).

Logging goes to ``logging.getLogger("confd_ha.emulator")``; neither the token nor the IPC
access secret is ever logged.

Modules: ``config`` (NodeConfig), ``ipc`` and ``ipcmsg`` (IPC listener and connections, what
their bytes mean), ``eventhub`` (event subscribers, HA_INFO_SYNC), ``engine`` (the node's HA
work, one item at a time), the node in layers -- ``nodebase`` (shared state), ``tree`` (links to
the primary and the secondaries, replication), ``orders`` (the HA orders), ``node`` (lifecycle,
control interface) --, ``roster`` (listing order), ``peer`` and ``link`` (inter-node protocol),
``store`` (datastore and journal).
"""

from .config import NodeConfig
from .node import (
    HA_INFO_BESECONDARY_RESULT,
    HA_INFO_IS_NONE,
    HA_INFO_IS_PRIMARY,
    HA_INFO_NOPRIMARY,
    HA_INFO_SECONDARY_ARRIVED,
    HA_INFO_SECONDARY_DIED,
    HA_INFO_SECONDARY_INITIALIZED,
    Node,
)
from .nodebase import STATE_NONE, STATE_PRIMARY, STATE_SECONDARY, STATE_SECONDARY_RELAY
from .store import Store

__all__ = [
    "Node", "NodeConfig", "Store",
    "STATE_NONE", "STATE_SECONDARY", "STATE_PRIMARY", "STATE_SECONDARY_RELAY",
    "HA_INFO_NOPRIMARY", "HA_INFO_SECONDARY_DIED", "HA_INFO_SECONDARY_ARRIVED",
    "HA_INFO_SECONDARY_INITIALIZED", "HA_INFO_IS_PRIMARY", "HA_INFO_IS_NONE",
    "HA_INFO_BESECONDARY_RESULT",
]
