"""The listing order of a primary's subtree (confd_ha.emulator.roster), on the sequences that
real ConfD 8.2.5 was recorded with (tests/conformance/recorded/confd-8.2.5: the scenario each
test names)."""

from __future__ import annotations

from confd_ha.emulator.roster import Roster, term_key

A = (127, 0, 0, 1)


def ids(roster: Roster) -> list:
    return [e.nodeid for e in roster]


def relay_n2(*behind) -> Roster:
    """A roster where n2 joined directly and then, as a relay, reported each of ``behind``
    joining behind it, one after the other."""
    r = Roster()
    r.add_direct(b"n2", A)
    for nodeid in behind:
        r.touch(b"n2")
        r.add_behind(nodeid, A, b"n2")
    return r


def test_direct_secondaries_newest_first():
    # primary_status_order: n2, n3 join; n2 leaves and joins again.
    r = Roster()
    r.add_direct(b"n2", A)
    r.add_direct(b"n3", A)
    assert ids(r) == [b"n3", b"n2"]
    r.remove_tree(b"n2")
    r.add_direct(b"n2", A)
    assert ids(r) == [b"n2", b"n3"]


def test_a_relay_moves_to_the_front_when_it_reports():
    # x_relay_order1 / relay_duplicate_id: n2 relay, n3 behind n2, n4 direct, n5 behind n2.
    r = relay_n2(b"n3")
    assert ids(r) == [b"n3", b"n2"]
    r.add_direct(b"n4", A)
    assert ids(r) == [b"n4", b"n3", b"n2"]
    r.touch(b"n2")                       # n5 asks to join behind n2 ...
    r.add_behind(b"n5", A, b"n2")        # ... and is admitted
    assert ids(r) == [b"n5", b"n2", b"n4", b"n3"]
    # n3 leaves (reported by n2): [R | L - R - X]
    r.remove_one(b"n3")
    r.touch(b"n2")
    assert ids(r) == [b"n2", b"n5", b"n4"]


def test_refused_request_still_moves_the_relay():
    # relay_duplicate_id: n2 relay, n4 direct; a node asks n2 to join with a taken id.
    r = Roster()
    r.add_direct(b"n2", A)
    r.add_direct(b"n4", A)
    r.touch(b"n2")
    assert ids(r) == [b"n2", b"n4"]


def test_two_levels_of_relays():
    # relay_chain_two_levels: n1 <- n2 (relay) <- n3 (relay) <- n4.
    r = relay_n2(b"n3")
    r.touch(b"n2")
    r.add_behind(b"n4", A, b"n3")
    assert ids(r) == [b"n4", b"n2", b"n3"]
    assert [e.nodeid for e in r.below(b"n2")] == [b"n4", b"n3"]
    assert [e.nodeid for e in r.below(b"n3")] == [b"n4"]
    assert r.direct_of(b"n4").nodeid == b"n2"
    assert r.direct_of(b"n2").nodeid == b"n2"
    assert r.direct_of(b"n9") is None


def test_losing_a_relay_takes_its_subtree_in_list_order():
    # relay_benone_two_behind: n1's list [n4, n2, n3]; n2 goes: n2, then n4, n3.
    r = relay_n2(b"n3", b"n4")
    assert ids(r) == [b"n4", b"n2", b"n3"]
    gone = r.remove_tree(b"n2")
    assert [e.nodeid for e in gone] == [b"n2", b"n4", b"n3"]
    assert ids(r) == []


def test_cut_keeps_the_order_of_the_rest():
    # relay_secondary_dead_order: [n4, n3, n2]; secondary_dead(n3) -> [n4, n2].
    r = relay_n2(b"n3")
    r.add_direct(b"n4", A)
    assert ids(r) == [b"n4", b"n3", b"n2"]
    assert [e.nodeid for e in r.remove_tree(b"n3")] == [b"n3"]
    assert ids(r) == [b"n4", b"n2"]


def test_ids_are_terms():
    r = Roster()
    r.add_direct(b"5", A)
    r.add_direct(5, A)
    assert b"5" in r and 5 in r and 5.0 not in r and "5" not in r
    assert term_key(b"5") != term_key(5)
    assert r.listing() == [(5, A), (b"5", A)]
    r.touch(b"nobody")                  # unknown: nothing moves
    assert r.remove_one(b"nobody") is None and r.remove_tree(b"nobody") == []
