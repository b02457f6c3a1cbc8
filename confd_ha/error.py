"""Errors of the HA API, shaped like Cisco's ``_confd.error`` / ``_ncs.error``.

``Error`` and ``EOF`` are siblings, as in the original module. Unlike the original, the
details (``confd_errno``, ``confd_strerror``, ``confd_lasterr`` and, for ``ERR_OS``,
``errno``) live on the raised *instance*, so concurrent threads never see each other's
details. Every failure of this package is raised through :func:`raise_error` or
:func:`check` -- the one place where codes become exceptions.
"""

from __future__ import annotations

import errno as _errno
from typing import Dict, NoReturn, Optional, Tuple, Type

# ---------------------------------------------------------------- codes (libconfd's numbers)
#
# The texts are libconfd's confd_strerror() of ConfD 8.2.5, as Cisco's _confd module returns
# them (observed; tests/differential records them): a drop-in must give the same str(e).
# libconfd of ConfD has no text for the NSO-only codes (56, 62-66): "Unknown error", as for
# every code it does not know.

UNKNOWN_TEXT = "Unknown error"

# The codes are written out (not built in a loop) so that type checkers and editors see them.
ERR_NOEXISTS = 1
ERR_ALREADY_EXISTS = 2
ERR_ACCESS_DENIED = 3
ERR_NOT_WRITABLE = 4
ERR_BADTYPE = 5
ERR_NOTCREATABLE = 6
ERR_NOTDELETABLE = 7
ERR_BADPATH = 8
ERR_NOSTACK = 9
ERR_LOCKED = 10
ERR_INUSE = 11
ERR_NOTSET = 12
ERR_NON_UNIQUE = 13
ERR_BAD_KEYREF = 14
ERR_TOO_FEW_ELEMS = 15
ERR_TOO_MANY_ELEMS = 16
ERR_BADSTATE = 17
ERR_INTERNAL = 18
ERR_EXTERNAL = 19
ERR_MALLOC = 20
ERR_PROTOUSAGE = 21
ERR_NOSESSION = 22
ERR_TOOMANYTRANS = 23
ERR_OS = 24
ERR_HA_CONNECT = 25
ERR_HA_CLOSED = 26
ERR_HA_BADFXS = 27
ERR_HA_BADTOKEN = 28
ERR_HA_BADNAME = 29
ERR_HA_BIND = 30
ERR_HA_NOTICK = 31
ERR_VALIDATION_WARNING = 32
ERR_SUBAGENT_DOWN = 33
ERR_LIB_NOT_INITIALIZED = 34
ERR_TOO_MANY_SESSIONS = 35
ERR_BAD_CONFIG = 36
ERR_RESOURCE_DENIED = 37
ERR_INCONSISTENT_VALUE = 38
ERR_APPLICATION_INTERNAL = 39
ERR_UNSET_CHOICE = 40
ERR_MUST_FAILED = 41
ERR_MISSING_INSTANCE = 42
ERR_INVALID_INSTANCE = 43
ERR_UNAVAILABLE = 44
ERR_EOF = 45
ERR_NOTMOVABLE = 46
ERR_HA_WITH_UPGRADE = 47
ERR_TIMEOUT = 48
ERR_ABORTED = 49
ERR_XPATH = 50
ERR_NOT_IMPLEMENTED = 51
ERR_HA_BADVSN = 52
ERR_POLICY_FAILED = 53
ERR_POLICY_COMPILATION_FAILED = 54
ERR_POLICY_EVALUATION_FAILED = 55
NCS_ERR_CONNECTION_REFUSED = 56
ERR_START_FAILED = 57
ERR_DATA_MISSING = 58
ERR_CLI_CMD = 59
ERR_UPGRADE_IN_PROGRESS = 60
ERR_NOTRANS = 61
NCS_ERR_SERVICE_CONFLICT = 62
NCS_ERR_CONNECTION_TIMEOUT = 63
NCS_ERR_CONNECTION_CLOSED = 64
NCS_ERR_DEVICE = 65
NCS_ERR_TEMPLATE = 66
ERR_NO_MOUNT_ID = 67
ERR_STALE_INSTANCE = 68
ERR_HA_BADCONFIG = 69
ERR_TRANSACTION_CONFLICT = 70
ERR_HA_ABORT = 71

_TEXTS: Dict[int, str] = {
    ERR_NOEXISTS: "item does not exist",
    ERR_ALREADY_EXISTS: "item already exists",
    ERR_ACCESS_DENIED: "access denied",
    ERR_NOT_WRITABLE: "item is not writable",
    ERR_BADTYPE: "item has a bad/wrong type",
    ERR_NOTCREATABLE: "item is not creatable",
    ERR_NOTDELETABLE: "item is not deletable",
    ERR_BADPATH: "badly formatted or nonexistent path",
    ERR_NOSTACK: "cannot pop an empty stack",
    ERR_LOCKED: "locked",
    ERR_INUSE: "in use",
    ERR_NOTSET: "notset",
    ERR_NON_UNIQUE: "non unique",
    ERR_BAD_KEYREF: "bad keyref",
    ERR_TOO_FEW_ELEMS: "too few elems",
    ERR_TOO_MANY_ELEMS: "too many elems",
    ERR_BADSTATE: "operation in wrong state",
    ERR_INTERNAL: "internal error",
    ERR_EXTERNAL: "external error",
    ERR_MALLOC: "Failed to allocate",
    ERR_PROTOUSAGE: "Bad protocol usage or unexpected retval",
    ERR_NOSESSION: "A session must be established prior to this command",
    ERR_TOOMANYTRANS: "Too many transactions",
    ERR_OS: "system call failed",
    ERR_HA_CONNECT: "Failed to connect to remote HA node",
    ERR_HA_CLOSED: "Remote HA node closed socket to us",
    ERR_HA_BADFXS: "Remote HA node has incompatible config to us",
    ERR_HA_BADTOKEN: "Remote HA node has bad credentials",
    ERR_HA_BADNAME: "remote HA node has other/wrong name",
    ERR_HA_BIND: "failed to bind HA socket",
    ERR_HA_NOTICK: "Remote HA node doesn't send us any ticks",
    ERR_VALIDATION_WARNING: "Validation warnings",
    ERR_SUBAGENT_DOWN: "Subagent down",
    ERR_LIB_NOT_INITIALIZED: "Library not initialized",
    ERR_TOO_MANY_SESSIONS: "Maximum number of sessions reached",
    ERR_BAD_CONFIG: "Error in a configuration",
    ERR_RESOURCE_DENIED: "Data provider returned CONFD_ERRCODE_RESOURCE_DENIED",
    ERR_INCONSISTENT_VALUE: "Data provider returned CONFD_ERRCODE_INCONSISTENT_VALUE",
    ERR_APPLICATION_INTERNAL: "Data provider returned CONFD_ERRCODE_APPLICATION_INTERNAL",
    ERR_UNSET_CHOICE: "No case selected for mandatory choice",
    ERR_MUST_FAILED: "Unsatisfied must constraint",
    ERR_MISSING_INSTANCE: "Required instance does not exist",
    ERR_INVALID_INSTANCE: "Instance does not conform to path filters",
    ERR_UNAVAILABLE: "Unavailable functionality",
    ERR_EOF: "Lost connection to ConfD",
    ERR_NOTMOVABLE: "item is not movable",
    ERR_HA_WITH_UPGRADE: "HA secondary not allowed during upgrade",
    ERR_TIMEOUT: "Operation timed out",
    ERR_ABORTED: "Operation was aborted",
    ERR_XPATH: "XPath compilation/evaluation failed",
    ERR_NOT_IMPLEMENTED: "Operation not implemented",
    ERR_HA_BADVSN: "Remote HA node has incompatible version",
    ERR_POLICY_FAILED: "Policy expression evaluated to false",
    ERR_POLICY_COMPILATION_FAILED: "Policy XPath expression could not be compiled",
    ERR_POLICY_EVALUATION_FAILED: "Policy expression failed XPath evaluation",
    NCS_ERR_CONNECTION_REFUSED: UNKNOWN_TEXT,
    ERR_START_FAILED: "Failed to proceed to next start phase",
    ERR_DATA_MISSING: "Data provider returned CONFD_ERRCODE_DATA_MISSING",
    ERR_CLI_CMD: "CLI command error",
    ERR_UPGRADE_IN_PROGRESS: "Not allowed during upgrade",
    ERR_NOTRANS: "Transaction not found",
    NCS_ERR_SERVICE_CONFLICT: UNKNOWN_TEXT,
    NCS_ERR_CONNECTION_TIMEOUT: UNKNOWN_TEXT,
    NCS_ERR_CONNECTION_CLOSED: UNKNOWN_TEXT,
    NCS_ERR_DEVICE: UNKNOWN_TEXT,
    NCS_ERR_TEMPLATE: UNKNOWN_TEXT,
    ERR_NO_MOUNT_ID: "Path is ambiguous due to traversing a mount point",
    ERR_STALE_INSTANCE: "Required instance does not exist",
    ERR_HA_BADCONFIG: "Remote HA node has bad configuration",
    ERR_TRANSACTION_CONFLICT: "Conflict detected",
    ERR_HA_ABORT: "Transaction aborted",
}
# The Python constant name of each code (one name per code).
_NAMES: Dict[int, str] = {
    code: name for name, code in list(globals().items())
    if name.startswith(("ERR_", "NCS_ERR_")) and isinstance(code, int)
}

# Return codes of the C library (HDR), exposed like the original's constants.
CONFD_OK = 0
CONFD_ERR = -1
CONFD_EOF = -2


def strerror(code: int) -> str:
    """libconfd's text for a ``confd_errno`` value (``"Unknown error"`` for others)."""
    return _TEXTS.get(code, UNKNOWN_TEXT)


def errname(code: int) -> str:
    """The Python constant name of a ``confd_errno`` value, e.g. ``'ERR_HA_CLOSED'``."""
    return _NAMES.get(code, "ERR_%d" % code)


# ---------------------------------------------------------------- exceptions


class Error(Exception):
    """A failed call (the C library's ``CONFD_ERR`` result).

    Details are instance attributes: ``confd_errno``, ``confd_strerror``, ``confd_lasterr``,
    ``errno`` (the OS errno for ``ERR_OS``, else ``None``) and ``core_status`` (the C core's
    status code when the core refused the bytes, else ``None``; not part of the message).
    """

    confd_errno: int
    confd_strerror: str
    confd_lasterr: str
    errno: Optional[int]      # None for codes other than ERR_OS
    core_status: Optional[int]

    def __init__(self, confd_errno: int, lasterr: str = "",
                 os_errno: Optional[int] = None, core_status: Optional[int] = None) -> None:
        super().__init__("%s (%d): %s" % (strerror(confd_errno), confd_errno, lasterr))
        # Set after the base constructor: for Timeout that is OSError's, which resets errno.
        self.confd_errno = confd_errno
        self.confd_strerror = strerror(confd_errno)
        self.confd_lasterr = lasterr
        self.errno = os_errno
        self.core_status = core_status

    def __str__(self) -> str:  # OSError's own __str__ would show a tuple for the timeout class
        return "%s (%d): %s" % (self.confd_strerror, self.confd_errno, self.confd_lasterr)

    def __reduce__(self) -> Tuple[object, Tuple[object, ...]]:
        return (_rebuild, (type(self), self.confd_errno, self.confd_lasterr, self.errno,
                           self.core_status))


class EOF(Exception):
    """The peer closed the connection (the C library's ``CONFD_EOF`` result).

    As in the original module, an EOF carries no error code: ``confd_errno`` and ``errno``
    are None. ``confd_lasterr`` says where the connection ended (diagnostics only).
    """

    confd_errno: None
    confd_strerror: str
    confd_lasterr: str
    errno: None

    def __init__(self, lasterr: str = "", product: str = "ConfD") -> None:
        self.confd_errno = None
        self.confd_strerror = "%s closed connection" % product
        self.confd_lasterr = lasterr
        self.errno = None
        super().__init__(self.confd_strerror)

    def __reduce__(self) -> Tuple[object, Tuple[object, ...]]:
        return (_rebuild_eof, (self.confd_lasterr, self.confd_strerror.split(" ")[0]))


class Timeout(Error, TimeoutError):
    """A socket timeout: an :class:`Error` with ``ERR_OS``/``ETIMEDOUT`` that is also a
    builtin :class:`TimeoutError`."""

    def __init__(self, confd_errno: int, lasterr: str = "",
                 os_errno: Optional[int] = None, core_status: Optional[int] = None) -> None:
        Error.__init__(self, confd_errno, lasterr, os_errno, core_status)


def _rebuild(cls: Type[Error], code: int, lasterr: str, os_errno: Optional[int],
             core_status: Optional[int] = None) -> Error:
    return cls(code, lasterr, os_errno, core_status)


def _rebuild_eof(lasterr: str, product: str) -> EOF:
    return EOF(lasterr, product)


# ---------------------------------------------------------------- the chokepoint

# Status codes of the C core (csrc/confd_ha_core.h, enum chd_status).
_CORE_TEXTS: Dict[int, str] = {
    -1: "truncated message",
    -2: "extra bytes after the message",
    -3: "unsupported term tag in message",
    -4: "message nested too deep",
    -5: "bad value in message",
    -6: "message too large for the output buffer",
    -7: "unexpected reply from daemon",
    -8: "message is not an Erlang term",
    -9: "message too large",
    -10: "bad argument",
}


def raise_error(confd_errno: int, lasterr: str = "", os_errno: Optional[int] = None, *,
                daemon: bool = False, core_status: Optional[int] = None) -> NoReturn:
    """Raise the exception for ``confd_errno`` (never returns).

    ``confd_errno`` may also be ``CONFD_EOF`` (-2) to raise :class:`EOF`; an ``ERR_OS``
    with ``ETIMEDOUT`` raises :class:`Timeout`. With ``daemon`` the code is one the daemon
    sent in an ``{error, Code}`` reply: it is raised as an :class:`Error` whatever its value
    (as libconfd does, also for 0 and negative codes). ``core_status``: the C core's status
    code behind the failure, kept on the exception (``e.core_status``) and not in its text.
    """
    if daemon:
        raise Error(confd_errno, lasterr, core_status=core_status)
    if confd_errno == CONFD_EOF:
        raise EOF(lasterr)
    if confd_errno == ERR_OS and os_errno == _errno.ETIMEDOUT:
        raise Timeout(confd_errno, lasterr, os_errno, core_status)
    raise Error(confd_errno, lasterr, os_errno, core_status)


def check(status: int, what: str = "", text: Optional[str] = None) -> None:
    """Map a C-core status code to an exception; ``CHD_OK`` (0) returns quietly.

    Malformed bytes from a peer are a protocol-usage error (``ERR_PROTOUSAGE``), like any
    other reply the client cannot use. The message is ``text`` if given, else the core
    status's own text (prefixed with ``what``); either way the exception's ``core_status``
    is ``status``.
    """
    if status == 0:
        return
    if text is None:
        text = core_text(status)
        if what:
            text = "%s: %s" % (what, text)
    raise_error(ERR_PROTOUSAGE, text, core_status=status)


def core_text(status: int) -> str:
    """The text of a C-core status code."""
    return _CORE_TEXTS.get(status, "core error %d" % status)
