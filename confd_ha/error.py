"""Errors of the HA API, shaped like Cisco's ``_confd.error`` / ``_ncs.error``.

``Error`` and ``EOF`` are siblings, as in the original module. Unlike the original, the
details (``confd_errno``, ``confd_strerror``, ``confd_lasterr`` and, for ``ERR_OS``,
``errno``) live on the raised *instance*, so concurrent threads never see each other's
details. Every failure of this package is raised through :func:`raise_error` or
:func:`check` -- the one place where codes become exceptions.
"""

from __future__ import annotations

import errno as _errno

# ---------------------------------------------------------------- codes (wire-protocol §9.1)
#
# The texts are libconfd's confd_strerror() of ConfD 8.2.5, as Cisco's _confd module returns
# them (observed; tests/differential records them): a drop-in must give the same str(e).
# libconfd of ConfD has no text for the NSO-only codes (56, 62-66): "Unknown error", as for
# every code it does not know.

UNKNOWN_TEXT = "Unknown error"

_CODES = (
    (1, "NOEXISTS", "item does not exist"),
    (2, "ALREADY_EXISTS", "item already exists"),
    (3, "ACCESS_DENIED", "access denied"),
    (4, "NOT_WRITABLE", "item is not writable"),
    (5, "BADTYPE", "item has a bad/wrong type"),
    (6, "NOTCREATABLE", "item is not creatable"),
    (7, "NOTDELETABLE", "item is not deletable"),
    (8, "BADPATH", "badly formatted or nonexistent path"),
    (9, "NOSTACK", "cannot pop an empty stack"),
    (10, "LOCKED", "locked"),
    (11, "INUSE", "in use"),
    (12, "NOTSET", "notset"),
    (13, "NON_UNIQUE", "non unique"),
    (14, "BAD_KEYREF", "bad keyref"),
    (15, "TOO_FEW_ELEMS", "too few elems"),
    (16, "TOO_MANY_ELEMS", "too many elems"),
    (17, "BADSTATE", "operation in wrong state"),
    (18, "INTERNAL", "internal error"),
    (19, "EXTERNAL", "external error"),
    (20, "MALLOC", "Failed to allocate"),
    (21, "PROTOUSAGE", "Bad protocol usage or unexpected retval"),
    (22, "NOSESSION", "A session must be established prior to this command"),
    (23, "TOOMANYTRANS", "Too many transactions"),
    (24, "OS", "system call failed"),
    (25, "HA_CONNECT", "Failed to connect to remote HA node"),
    (26, "HA_CLOSED", "Remote HA node closed socket to us"),
    (27, "HA_BADFXS", "Remote HA node has incompatible config to us"),
    (28, "HA_BADTOKEN", "Remote HA node has bad credentials"),
    (29, "HA_BADNAME", "remote HA node has other/wrong name"),
    (30, "HA_BIND", "failed to bind HA socket"),
    (31, "HA_NOTICK", "Remote HA node doesn't send us any ticks"),
    (32, "VALIDATION_WARNING", "Validation warnings"),
    (33, "SUBAGENT_DOWN", "Subagent down"),
    (34, "LIB_NOT_INITIALIZED", "Library not initialized"),
    (35, "TOO_MANY_SESSIONS", "Maximum number of sessions reached"),
    (36, "BAD_CONFIG", "Error in a configuration"),
    (37, "RESOURCE_DENIED", "Data provider returned CONFD_ERRCODE_RESOURCE_DENIED"),
    (38, "INCONSISTENT_VALUE", "Data provider returned CONFD_ERRCODE_INCONSISTENT_VALUE"),
    (39, "APPLICATION_INTERNAL", "Data provider returned CONFD_ERRCODE_APPLICATION_INTERNAL"),
    (40, "UNSET_CHOICE", "No case selected for mandatory choice"),
    (41, "MUST_FAILED", "Unsatisfied must constraint"),
    (42, "MISSING_INSTANCE", "Required instance does not exist"),
    (43, "INVALID_INSTANCE", "Instance does not conform to path filters"),
    (44, "UNAVAILABLE", "Unavailable functionality"),
    (45, "EOF", "Lost connection to ConfD"),
    (46, "NOTMOVABLE", "item is not movable"),
    (47, "HA_WITH_UPGRADE", "HA secondary not allowed during upgrade"),
    (48, "TIMEOUT", "Operation timed out"),
    (49, "ABORTED", "Operation was aborted"),
    (50, "XPATH", "XPath compilation/evaluation failed"),
    (51, "NOT_IMPLEMENTED", "Operation not implemented"),
    (52, "HA_BADVSN", "Remote HA node has incompatible version"),
    (53, "POLICY_FAILED", "Policy expression evaluated to false"),
    (54, "POLICY_COMPILATION_FAILED", "Policy XPath expression could not be compiled"),
    (55, "POLICY_EVALUATION_FAILED", "Policy expression failed XPath evaluation"),
    (56, "NCS_ERR_CONNECTION_REFUSED", UNKNOWN_TEXT),
    (57, "START_FAILED", "Failed to proceed to next start phase"),
    (58, "DATA_MISSING", "Data provider returned CONFD_ERRCODE_DATA_MISSING"),
    (59, "CLI_CMD", "CLI command error"),
    (60, "UPGRADE_IN_PROGRESS", "Not allowed during upgrade"),
    (61, "NOTRANS", "Transaction not found"),
    (62, "NCS_ERR_SERVICE_CONFLICT", UNKNOWN_TEXT),
    (63, "NCS_ERR_CONNECTION_TIMEOUT", UNKNOWN_TEXT),
    (64, "NCS_ERR_CONNECTION_CLOSED", UNKNOWN_TEXT),
    (65, "NCS_ERR_DEVICE", UNKNOWN_TEXT),
    (66, "NCS_ERR_TEMPLATE", UNKNOWN_TEXT),
    (67, "NO_MOUNT_ID", "Path is ambiguous due to traversing a mount point"),
    (68, "STALE_INSTANCE", "Required instance does not exist"),
    (69, "HA_BADCONFIG", "Remote HA node has bad configuration"),
    (70, "TRANSACTION_CONFLICT", "Conflict detected"),
    (71, "HA_ABORT", "Transaction aborted"),
)

_TEXTS = {code: text for code, _name, text in _CODES}
_NAMES = {}
for _code, _name, _text in _CODES:
    _pyname = _name if _name.startswith("NCS_ERR_") else "ERR_" + _name
    globals()[_pyname] = _code
    _NAMES[_code] = _pyname
del _code, _name, _text, _pyname

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

    Details are instance attributes: ``confd_errno``, ``confd_strerror``, ``confd_lasterr``
    and ``errno`` (the OS errno for ``ERR_OS``, else ``None``).
    """

    def __init__(self, confd_errno: int, lasterr: str = "", os_errno: int | None = None):
        super().__init__("%s (%d): %s" % (strerror(confd_errno), confd_errno, lasterr))
        # Set after the base constructor: for Timeout that is OSError's, which resets errno.
        self.confd_errno = confd_errno
        self.confd_strerror = strerror(confd_errno)
        self.confd_lasterr = lasterr
        self.errno = os_errno

    def __str__(self) -> str:  # OSError's own __str__ would show a tuple for the timeout class
        return "%s (%d): %s" % (self.confd_strerror, self.confd_errno, self.confd_lasterr)

    def __reduce__(self):
        return (_rebuild, (type(self), self.confd_errno, self.confd_lasterr, self.errno))


class EOF(Exception):
    """The peer closed the connection (the C library's ``CONFD_EOF`` result, W-29).

    As in the original module, an EOF carries no error code: ``confd_errno`` and ``errno``
    are None. ``confd_lasterr`` says where the connection ended (diagnostics only).
    """

    def __init__(self, lasterr: str = "", product: str = "ConfD"):
        self.confd_errno = None
        self.confd_strerror = "%s closed connection" % product
        self.confd_lasterr = lasterr
        self.errno = None
        super().__init__(self.confd_strerror)

    def __reduce__(self):
        return (_rebuild_eof, (self.confd_lasterr, self.confd_strerror.split(" ")[0]))


class Timeout(Error, TimeoutError):
    """A socket timeout: an :class:`Error` with ``ERR_OS``/``ETIMEDOUT`` that is also a
    builtin :class:`TimeoutError` (W-03)."""

    def __init__(self, confd_errno: int, lasterr: str = "", os_errno: int | None = None):
        Error.__init__(self, confd_errno, lasterr, os_errno)


def _rebuild(cls, code, lasterr, os_errno):
    return cls(code, lasterr, os_errno)


def _rebuild_eof(lasterr, product):
    return EOF(lasterr, product)


# ---------------------------------------------------------------- the chokepoint

# Status codes of the C core (csrc/confd_ha_core.h, enum chd_status).
_CORE_TEXTS = {
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


def raise_error(confd_errno: int, lasterr: str = "", os_errno: int | None = None, *,
                daemon: bool = False):
    """Raise the exception for ``confd_errno`` (never returns).

    ``confd_errno`` may also be ``CONFD_EOF`` (-2) to raise :class:`EOF`; an ``ERR_OS``
    with ``ETIMEDOUT`` raises :class:`Timeout`. With ``daemon`` the code is one the daemon
    sent in an ``{error, Code}`` reply: it is raised as an :class:`Error` whatever its value
    (as libconfd does, also for 0 and negative codes).
    """
    if daemon:
        raise Error(confd_errno, lasterr)
    if confd_errno == CONFD_EOF:
        raise EOF(lasterr)
    if confd_errno == ERR_OS and os_errno == _errno.ETIMEDOUT:  # noqa: F821
        raise Timeout(confd_errno, lasterr, os_errno)
    raise Error(confd_errno, lasterr, os_errno)


def check(status: int, what: str = "") -> None:
    """Map a C-core status code to an exception; ``CHD_OK`` (0) returns quietly.

    Malformed bytes from a peer are a protocol-usage error (``ERR_PROTOUSAGE``), like any
    other reply the client cannot use.
    """
    if status == 0:
        return
    text = _CORE_TEXTS.get(status, "core error %d" % status)
    if what:
        text = "%s: %s" % (what, text)
    raise_error(ERR_PROTOUSAGE, text)  # noqa: F821


def core_text(status: int) -> str:
    """The text of a C-core status code."""
    return _CORE_TEXTS.get(status, "core error %d" % status)
