"""Emulated ConfD HA node: IPC server, node state machine, cluster links, datastore and event hub."""
