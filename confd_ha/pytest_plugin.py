"""pytest fixtures that start emulated ConfD HA nodes (registered through ``pytest11``)."""
