"""Python representation of Erlang terms exchanged on the wire.

The mapping is fixed for the whole project (client, emulator and the test reference codec):

=====================  ===========================================
Erlang                 Python
=====================  ===========================================
integer (any tag)      ``int``
float (70 or 99)       ``float``
atom (100/115/118/119) :class:`Atom` (a ``str`` subclass)
binary (109)           ``bytes``
tuple (104/105)        ``tuple``
proper list (108/106)  ``list``
STRING (107)           ``list`` of ``int`` 0..255
=====================  ===========================================

When encoding, ``bool`` becomes the atom ``true``/``false`` and ``bytearray``/``memoryview``
become binaries; a plain ``str`` is refused because it is ambiguous (atom or binary?).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Atom", "SmallAtom", "OK", "ERROR", "TRUE", "FALSE", "UNDEFINED", "Term"]

# The type of an Erlang term in annotations: one of the Python types of the table above
# (nested tuples and lists of them). A recursive union would make every use a chain of
# isinstance checks that the decoders already do, so annotations say Any.
Term = Any


class Atom(str):
    """An Erlang atom. Compares equal to the ``str`` of its name, but is a distinct type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


class SmallAtom(Atom):
    """An atom encoded as SMALL_ATOM_UTF8 (tag 119) rather than the canonical ATOM (100):
    the form libconfd gives the atoms it sends (``undefined`` in a subscription,
    ``ha_synced``), so that the client's bytes are libconfd's. The same term otherwise."""

    __slots__ = ()


OK = Atom("ok")
ERROR = Atom("error")
TRUE = Atom("true")
FALSE = Atom("false")
UNDEFINED = Atom("undefined")
