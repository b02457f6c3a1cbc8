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

_CODES = (
    (1, "NOEXISTS", "item does not exist"),
    (2, "ALREADY_EXISTS", "item already exists"),
    (3, "ACCESS_DENIED", "access denied"),
    (4, "NOT_WRITABLE", "object is not writable"),
    (5, "BADTYPE", "value of the wrong type"),
    (6, "NOTCREATABLE", "object cannot be created"),
    (7, "NOTDELETABLE", "object cannot be deleted"),
    (8, "BADPATH", "malformed path"),
    (9, "NOSTACK", "pop without matching push"),
    (10, "LOCKED", "already locked"),
    (11, "INUSE", "commit attempted while another user holds a lock"),
    (12, "NOTSET", "mandatory leaf has no value"),
    (13, "NON_UNIQUE", "unique constraint violated"),
    (14, "BAD_KEYREF", "bad keyref"),
    (15, "TOO_FEW_ELEMS", "min-elements violated"),
    (16, "TOO_MANY_ELEMS", "max-elements violated"),
    (17, "BADSTATE", "operation in wrong state"),
    (18, "INTERNAL", "internal error"),
    (19, "EXTERNAL", "error originating in user code"),
    (20, "MALLOC", "memory allocation failed"),
    (21, "PROTOUSAGE", "API used incorrectly"),
    (22, "NOSESSION", "the call requires an established user context"),
    (23, "TOOMANYTRANS", "transaction limit reached"),
    (24, "OS", "an OS call failed"),
    (25, "HA_CONNECT", "could not connect to the remote HA node"),
    (26, "HA_CLOSED", "remote HA node closed the connection, or timed out waiting for the sync reply during besecondary"),
    (27, "HA_BADFXS", "remote HA node has a different set of fxs files, or different versions of them"),
    (28, "HA_BADTOKEN", "remote HA node has a different token"),
    (29, "HA_BADNAME", "remote HA node has a different name than expected"),
    (30, "HA_BIND", "could not bind the HA listen socket"),
    (31, "HA_NOTICK", "remote HA node stopped sending keepalive ticks"),
    (32, "VALIDATION_WARNING", "validation produced warnings"),
    (33, "SUBAGENT_DOWN", "NETCONF subagent is down"),
    (34, "LIB_NOT_INITIALIZED", "library not initialised"),
    (35, "TOO_MANY_SESSIONS", "limit on concurrent user logins reached"),
    (36, "BAD_CONFIG", "configuration error"),
    (37, "RESOURCE_DENIED", "callback returned resource-denied"),
    (38, "INCONSISTENT_VALUE", "callback returned inconsistent-value"),
    (39, "APPLICATION_INTERNAL", "callback returned application-internal"),
    (40, "UNSET_CHOICE", "mandatory choice has no case"),
    (41, "MUST_FAILED", "must expression not satisfied"),
    (42, "MISSING_INSTANCE", "instance-identifier target missing"),
    (43, "INVALID_INSTANCE", "instance-identifier violates its path filter"),
    (44, "UNAVAILABLE", "functionality unavailable"),
    (45, "EOF", "set when a call returns the EOF result"),
    (46, "NOTMOVABLE", "object cannot be moved"),
    (47, "HA_WITH_UPGRADE", "HA role change conflicts with an in-service upgrade"),
    (48, "TIMEOUT", "timed out"),
    (49, "ABORTED", "aborted"),
    (50, "XPATH", "XPath compile or evaluation failure"),
    (51, "NOT_IMPLEMENTED", "operation not implemented by an older daemon"),
    (52, "HA_BADVSN", "remote HA node has an incompatible protocol version"),
    (53, "POLICY_FAILED", "policy expression evaluated to false"),
    (54, "POLICY_COMPILATION_FAILED", "policy XPath failed to compile"),
    (55, "POLICY_EVALUATION_FAILED", "policy XPath failed to evaluate"),
    (56, "NCS_ERR_CONNECTION_REFUSED", "NSO could not connect to a device"),
    (57, "START_FAILED", "start-phase change failed"),
    (58, "DATA_MISSING", "callback returned data-missing"),
    (59, "CLI_CMD", "CLI command failed"),
    (60, "UPGRADE_IN_PROGRESS", "not allowed during an upgrade"),
    (61, "NOTRANS", "invalid transaction handle"),
    (62, "NCS_ERR_SERVICE_CONFLICT", "service conflict"),
    (63, "NCS_ERR_CONNECTION_TIMEOUT", "connection timeout"),
    (64, "NCS_ERR_CONNECTION_CLOSED", "connection closed"),
    (65, "NCS_ERR_DEVICE", "device error"),
    (66, "NCS_ERR_TEMPLATE", "template error"),
    (67, "NO_MOUNT_ID", "path ambiguous across a mount point"),
    (68, "STALE_INSTANCE", "instance-identifier stale after an upgrade"),
    (69, "HA_BADCONFIG", "remote HA node has an incompatible HA application configuration"),
    (70, "TRANSACTION_CONFLICT", "transaction conflict"),
    (71, "HA_ABORT", "transaction aborted by an HA transition"),
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
    """The text for a ``confd_errno`` value (W-28)."""
    return _TEXTS.get(code, "unknown error")


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
    """The peer closed the connection (the C library's ``CONFD_EOF`` result, W-29)."""

    def __init__(self, lasterr: str = "", product: str = "ConfD"):
        self.confd_errno = ERR_EOF  # noqa: F821 -- defined from _CODES above
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


def raise_error(confd_errno: int, lasterr: str = "", os_errno: int | None = None):
    """Raise the exception for ``confd_errno`` (never returns).

    ``confd_errno`` may also be ``CONFD_EOF`` (-2) to raise :class:`EOF`; an ``ERR_OS``
    with ``ETIMEDOUT`` raises :class:`Timeout`.
    """
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
