"""Client differential: every case of the HA API run through ``confd_ha`` and through Cisco's
own ``_confd.ha`` / ``_confd.events`` on the same daemon state (docs/differential.md)."""
