"""The ``confd-ha agent`` tests: its etcd client, and the HA scenarios on a real etcd cluster
with emulated nodes (docs/agent.md, "Tests")."""
