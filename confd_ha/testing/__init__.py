"""What runs emulated nodes for tests, demos and benchmarks (not part of the client's API).

``loop`` (:class:`~.loop.EmulatorThread`: an asyncio loop in a thread), ``node``
(:class:`~.node.SyncNode`: one node, synchronously), ``cluster`` (:class:`~.cluster.Cluster`:
the one cluster of the runner, the fixtures and the tests), ``ports`` (HA ports held on
several addresses), ``process`` (``confd-ha emulate`` as a child process), ``control`` (the
control endpoint's client), ``pytest_plugin`` (the fixtures); ``etcd``, ``ha_nodes`` and
``agent_world`` for the HA agent. The emulator itself (:mod:`confd_ha.emulator`) never
imports this package.
"""
