"""The README's pytest-fixture example, run as written (through the installed plugin)."""

import confd_ha as ha


def test_failover(ha_cluster):
    c = ha_cluster(3, tick_timeout=0.2)      # n1..n3 on 127.0.0.1..3, free ports
    c.form("token")                          # n1 primary, n2 and n3 its secondaries
    c[0].kill()
    c[1].wait_state(1)                       # the secondaries drop to NONE (NOPRIMARY)
    c[2].wait_state(1)
    assert (c[1].state, c[2].state) == (ha.STATE_NONE, ha.STATE_NONE)
