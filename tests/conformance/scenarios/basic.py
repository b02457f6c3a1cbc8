"""First scenarios: forming a cluster and taking it apart."""

from . import scenario


@scenario(nodes=3)
def form_sync_and_async(w):
    """A primary, one synchronous and one asynchronous secondary; statuses; benone on the
    primary."""
    for n in ("n1", "n2", "n3"):
        w.subscribe(n)
    w.beprimary("n1", "n1")
    w.besecondary("n2", "n2", "n1", "n1")
    w.besecondary("n3", "n3", "n1", "n1", wait=False)
    w.status("n1")
    w.status("n2")
    w.status("n3")
    w.benone("n1")
    w.status("n1")
    w.status("n2")


@scenario(nodes=2, tick=1.0)
def kill_primary(w):
    """kill -9 of the primary: the secondary's NOPRIMARY and its timing."""
    w.subscribe("n2")
    w.beprimary("n1", "n1")
    w.besecondary("n2", "n2", "n1", "n1")
    w.kill("n1")
    w.wait(("n2", "NOPRIMARY"), within=10)
    w.status("n2")


@scenario(nodes=2, tick=1.0)
def freeze_primary(w):
    """SIGSTOP of the primary: NOPRIMARY on the secondary after the tick limit."""
    w.subscribe("n2")
    w.beprimary("n1", "n1")
    w.besecondary("n2", "n2", "n1", "n1")
    w.freeze("n1")
    w.wait(("n2", "NOPRIMARY"), within=10)
    w.status("n2")
    w.thaw("n1")
    w.sleep(1)
