"""IPC level: besecondary orders whose fields are not what the API sends -- address terms that
are not IP tuples, WaitReply values other than 0 and 1 (docs/conformance-ipc.md).

Addresses that are not tuples are host names to resolve. Bad IP tuples and bad WaitReply
values make ConfD's HA subsystem fail after it has begun the order: the node drops to NONE
(IS_NONE), the control socket is closed, and the next control socket is served normally
(after a moment: one connected while the subsystem restarts is reset). ConfD stops
altogether after about four such failures within a few seconds, so a scenario never has
more than two. The emulator fails like that only with --confd-quirks (without, it answers
such orders with {error,21}).

n2 is never primary here: its HA port is closed, so a join to it is refused.
"""

from confd_ha._terms import Atom

from . import scenario

STATUS = (4,)


def _order(w, label, addr, wait, shown_addr):
    w.send_term(label, (2, b"n1", (b"n9", addr), wait),
                "{2,<<'n1'>>,{<<'n9'>>,%s},%s}" % (shown_addr, wait))


@scenario(nodes=1, quirks=True)
def ipc_besecondary_bad_ip_tuple_quirk(w):
    """An address tuple that is not an IP address ({1,2,3}; {1,2,3,256} with WaitReply 0):
    IS_NONE, the control socket is closed without a reply, the next one works."""
    w.subscribe("n1")
    w.control("n1", "c")
    w.send_term("c", (1, b"n1"))
    w.recv_frame("c", 2.0)
    _order(w, "c", (1, 2, 3), 1, "{1,2,3}")
    w.recv("c", 64, 2.0)
    w.sleep(1)  # ConfD restarts its HA subsystem meanwhile; a socket in that moment is reset
    w.control("n1", "d")
    w.send_term("d", STATUS)
    w.recv_frame("d", 2.0)
    _order(w, "d", (1, 2, 3, 256), 0, "{1,2,3,256}")
    w.recv("d", 64, 2.0)
    w.sleep(1)
    w.status("n1")


@scenario(nodes=2, quirks=True)
def ipc_besecondary_bad_waitreply_quirk(w):
    """WaitReply 2 with a valid address: the join is tried (and refused), then the control
    socket is closed instead of answered; IS_NONE as for any failed join."""
    w.subscribe("n1")
    w.control("n1", "c")
    w.send_term("c", (2, b"n1", (b"n2", w.ip_term("n2")), 2), "{2,<<'n1'>>,{<<'n2'>>,n2},2}")
    w.recv("c", 64, 3.0)
    w.sleep(1)
    w.status("n1")


@scenario(nodes=2)
def ipc_besecondary_name_addresses(w):
    """Addresses that are not tuples are host names to resolve: an atom, an integer and an
    empty list fail with HA_CONNECT (25); the socket stays open."""
    w.subscribe("n1")
    w.control("n1", "c")
    for addr, shown in ((Atom("nohost"), "nohost"), (5, "5"), ([], "[]")):
        _order(w, "c", addr, 1, shown)
        w.recv_frame("c", 5.0)
    w.send_term("c", STATUS)
    w.recv_frame("c", 2.0)
