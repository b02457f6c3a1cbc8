"""The terms behind the golden vectors, in the project's Python representation.

``VECTORS`` maps every vector name of ``vectors.json`` to the term that
``gen_vectors.escript`` gave to Erlang's ``term_to_binary/2``. It is written out by hand from the
escript (not obtained by decoding the golden bytes), so that the bytes can check our codecs.

Names starting with ``decode_only_`` hold encodings our canonical encoder never emits (STRING 107,
SMALL_ATOM_UTF8 119); for those, ``VECTORS`` holds the term the *decoder* must return (a STRING
decodes to a ``list`` of ``int``).

``load()`` returns ``{name: bytes}`` from ``vectors.json``; ``metadata()`` the other fields.
"""

from __future__ import annotations

import json
import os
from typing import Any

try:
    from confd_ha._terms import Atom
except Exception:  # pragma: no cover - package __init__ mid-rewrite: reuse refcodec's fallback
    from refcodec import Atom  # type: ignore[no-redef]

__all__ = ["VECTORS", "DECODE_ONLY_PREFIX", "load", "metadata", "VECTORS_JSON"]

VECTORS_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")
DECODE_ONLY_PREFIX = "decode_only_"

A = Atom
OK = A("ok")
ERROR = A("error")
UNDEFINED = A("undefined")


def _seq(start: int, stop_inclusive: int) -> bytes:
    return bytes(range(start, stop_inclusive + 1))


def _nest(levels: int, term: Any) -> Any:
    for _ in range(levels):
        term = (term,)
    return term


IP6_DOC_1 = (0x2001, 0xDB8, 0, 0, 0, 0, 0, 1)
IP6_DOC_2 = (0x2001, 0xDB8, 0, 0, 0, 0, 0, 2)

_ORDERS: dict[str, Any] = {
    "order_beprimary_n1": (1, b"n1"),
    "order_besecondary_ipv4_wait1": (2, b"n2", (b"n1", (10, 0, 0, 1)), 1),
    "order_besecondary_ipv4_wait0": (2, b"n2", (b"n1", (10, 0, 0, 1)), 0),
    "order_besecondary_ipv6_wait0": (2, b"n2", (b"n1", (0, 0, 0, 0, 0, 0, 0, 1)), 0),
    "order_besecondary_ipv6_wait1": (2, b"n2", (b"n1", IP6_DOC_1), 1),
    "order_besecondary_straddr_wait1": (2, b"n2", (b"n1", b"primary.example"), 1),
    "order_benone": (3,),
    "order_getstatus": (4,),
    "order_secondary_dead_n2": (5, b"n2"),
    "order_berelay": (6,),
}

_NODEID_VALUES: dict[str, Any] = {
    "noexists": A("not_found"),
    "buf": b"node-1",
    "buf_empty": b"",
    "int8": (6, -5),
    "int16": (7, -300),
    "int32": 5,
    "int32_neg": -100000,
    "int32_max": 2147483647,
    "int64": (9, 5000000000),
    "int64_min": (9, -9223372036854775808),
    "uint8": (10, 255),
    "uint16": (11, 65535),
    "uint32": (12, 4000000000),
    "uint64_max": (13, 18446744073709551615),
    "uint64_near_max": (13, 18446744073709551610),
    "double": 2.5,
    "ipv4": (10, 0, 0, 1),
    "ipv6": IP6_DOC_1,
    "bool_true": A("true"),
    "bool_false": A("false"),
    "qname": (b"p", b"n"),
    "datetime": (19, (2024, 1, 2, 3, 4, 5, 6, 1, 30)),
    "datetime_notz": (19, (2024, 1, 2, 3, 4, 5, 6, [], 0)),
    "date": (20, (2024, 12, 31, -5, 30)),
    "date_notz": (20, (2024, 12, 31, [], 0)),
    "time": (23, (3, 4, 5, 6, [], 0)),
    "duration": (27, (1, 2, 3, 4, 5, 6, 7)),
    "enum": (28, 3),
    "bit32": (29, 4294967295),
    "bit64": (30, 9223372036854775808),
    "list": [b"a", b"b"],
    "objectref": (34, [b"servers", b"server"]),
    "oid": (38, bytes([0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 6])),
    "binary": (39, bytes([0, 1, 2, 255])),
    "ipv4prefix": (40, ((10, 0, 0, 0), 8)),
    "ipv6prefix": (41, ((0x2001, 0xDB8, 0, 0, 0, 0, 0, 0), 64)),
    "default": A("default"),
    "decimal64": (43, (12345, 2)),
    "decimal64_neg": (43, (-9223372036854775807, 18)),
    "identityref": (44, (1, 2)),
    "dquad": (46, bytes([1, 2, 3, 4])),
    "hexstr": (47, bytes([0xDE, 0xAD, 0xBE, 0xEF])),
    "ipv4_and_plen": (48, ((192, 168, 1, 1), 24)),
    "ipv6_and_plen": (49, (IP6_DOC_1, 64)),
    "bitbig": (50, bytes([1, 0, 0, 0, 0, 0, 0, 0, 128])),
}

_NODEIDS: dict[str, Any] = {
    **{f"order_beprimary_nodeid_{name}": (1, value) for name, value in _NODEID_VALUES.items()},
    "order_besecondary_nodeids_int32_ipv4": (2, 7, (8, (10, 0, 0, 1)), 1),
}

_REPLIES: dict[str, Any] = {
    "reply_ok": OK,
    "reply_error_17": (ERROR, 17),
    "reply_error_26": (ERROR, 26),
    "reply_error_21": (ERROR, 21),
    "reply_error_28_reason": (ERROR, 28, b"bad token\x00"),
    "reply_error_28_reason_apptag": (ERROR, 28, (b"x\x00", b"apptag")),
}

_STATUSES: dict[str, Any] = {
    "status_none": (1, []),
    "status_secondary": (2, [(b"n1", (10, 0, 0, 1))]),
    "status_primary_ipv4": (3, [(b"n2", (10, 0, 0, 2))]),
    "status_primary_ipv6": (3, [(b"n2", IP6_DOC_2)]),
    "status_relay": (4, [(b"n1", (10, 0, 0, 1)), (b"n3", (10, 0, 0, 3))]),
    "status_primary_255_nodes": (
        3, [(b"n%03d" % i, (10, 0, i // 128, i)) for i in range(255)]),
    "status_primary_straddr": (3, [(b"n2", b"secondary.example")]),
}

_EVENT_SOCKET: dict[str, Any] = {
    "subscribe_ha_info": (64, 0, 0, UNDEFINED, 0),
    "subscribe_ha_info_sync": (1048640, 0, 0, UNDEFINED, 0),
    "subscribe_ha_info_4tuple": (64, 0, 0, UNDEFINED),
    "event_noprimary_closed": (64, (1, 26)),
    "event_noprimary_notick": (64, (1, 31)),
    "event_secondary_died": (64, (2, (b"n2", (10, 0, 0, 2)))),
    "event_secondary_arrived": (64, (3, (b"n2", (10, 0, 0, 2)))),
    "event_secondary_arrived_ipv6": (64, (3, (b"n2", IP6_DOC_2))),
    "event_secondary_initialized_copy": (64, (4, 1)),
    "event_secondary_initialized_nocopy": (64, (4, 0)),
    "event_is_primary": (64, (5, 0)),
    "event_is_none": (64, (6, 0)),
    "event_besecondary_result_ok": (64, (7, 0)),
    "event_besecondary_result_badtoken": (64, (7, 28)),
    "event_ack_ha_synced": A("ha_synced"),
}

_NONCE_S = _seq(0, 31)
_NONCE_P = _seq(32, 63)
_PROOF_P = _seq(64, 95)
_PROOF_S = _seq(96, 127)

_PEER: dict[str, Any] = {
    "peer_hello": (A("ha_hello"), 1, 0x08020500, b"n2", b"n1", _NONCE_S),
    "peer_challenge": (A("ha_challenge"), b"n1", _NONCE_P, _PROOF_P),
    "peer_auth_defaults": (A("ha_auth"), _PROOF_S, b"", b"", 0),
    "peer_auth": (A("ha_auth"), _PROOF_S, b"fxs-fp", b"cfg-fp", 42),
    "peer_sync_nocopy": (A("ha_sync"), A("nocopy"), 42),
    "peer_sync_copy": (A("ha_sync"), A("copy"), 42, [(b"/a", b"1"), (b"/b", b"2")]),
    "peer_synced_copy": (A("ha_synced"), 1),
    "peer_synced_nocopy": (A("ha_synced"), 0),
    "peer_tick": A("ha_tick"),
    "peer_trans": (A("ha_trans"), 1, 43, [(b"/a", b"2")]),
    "peer_ack": (A("ha_ack"), 1),
    "peer_bye": (A("ha_bye"), 0),
    "peer_reject_badvsn": (A("ha_reject"), 52),
    "peer_reject_badtoken": (A("ha_reject"), 28),
    "peer_reject_badname": (A("ha_reject"), 29),
    "peer_reject_badfxs": (A("ha_reject"), 27),
    "peer_reject_badconfig": (A("ha_reject"), 69),
}

_GENERIC: dict[str, Any] = {
    "int_0": 0,
    "int_neg1": -1,
    "int_255": 255,
    "int_256": 256,
    "int_i32_min": -2147483648,
    "int_i32_max": 2147483647,
    "int_2p31": 2147483648,
    "int_neg_2p31_minus1": -2147483649,
    "int_2p32": 4294967296,
    "int_2p63": 9223372036854775808,
    "int_2p64_minus1": 18446744073709551615,
    "int_neg_2p64_plus1": -18446744073709551615,
    "float_0": 0.0,
    "float_neg0": -0.0,
    "float_1_5": 1.5,
    "float_neg_2_25e100": -2.25e100,
    "float_min_subnormal": 5e-324,
    "atom_empty": A(""),
    "atom_ok": OK,
    "atom_undefined": UNDEFINED,
    "atom_latin1_cafe": A("caf\u00e9"),
    "binary_empty": b"",
    "binary_all_bytes": _seq(0, 255),
    "tuple_empty": (),
    "tuple_255": tuple(range(255)),
    "tuple_256": tuple(range(256)),
    "tuple_nested_5": _nest(4, (OK,)),
    "tuple_nested_100": _nest(99, ()),
    "list_empty": [],
    "list_binaries": [b"a", b"", b"bc"],
    "list_mixed": [1, OK, b"x", 2.5, (), [], -70000],
    "list_ints_not_string": [1, 256],
    "list_nested": [[b"a"], [[]], ([],)],
}

_DECODE_ONLY: dict[str, Any] = {
    "decode_only_string_abc": [97, 98, 99],
    "decode_only_list_small_ints": [0, 1, 255],
    "decode_only_reply_error_28_string_reason": (ERROR, 28, list(b"bad token")),
    "decode_only_status_string_addr": (3, [(b"n2", list(b"secondary.example"))]),
    "decode_only_atom_utf8_small": A("n\u03bb"),
}

VECTORS: dict[str, Any] = {}
for _group in (_ORDERS, _NODEIDS, _REPLIES, _STATUSES, _EVENT_SOCKET, _PEER, _GENERIC,
               _DECODE_ONLY):
    for _name, _term in _group.items():
        assert _name not in VECTORS, _name
        VECTORS[_name] = _term


def _read() -> dict[str, Any]:
    with open(VECTORS_JSON, encoding="utf-8") as fh:
        return dict(json.load(fh))


def load() -> dict[str, bytes]:
    """``{name: golden bytes}`` (each starting with 0x83) from ``vectors.json``."""
    return {name: bytes.fromhex(text) for name, text in _read()["vectors"].items()}


def metadata() -> dict[str, Any]:
    """The non-vector fields of ``vectors.json`` (``otp_release``, ``atom_tag``, ...)."""
    return {key: value for key, value in _read().items() if key != "vectors"}
