"""Writes the named seed inputs of the libFuzzer harnesses into fuzz/corpus/<harness>/.

Seeds are the Erlang golden vectors (tests/golden/vectors.json), the worked frames of
wire-protocol.md §12 (payloads without their 4-byte length; handshake bytes as they are) and
hand-written edge cases at every limit the decoder has. Each seed file is named ``seed-<what>``;
inputs the fuzzer found and ``-merge=1`` kept are named by their SHA-1, as libFuzzer names them.
Rerunning this script rewrites the seeds and leaves the other files alone.

    python fuzz/make_seeds.py
"""

from __future__ import annotations

import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOLDEN = os.path.join(ROOT, "tests", "golden", "vectors.json")

V = b"\x83"


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def old_float(text: bytes) -> bytes:
    return b"\x63" + text + b"\x00" * (31 - len(text))


def binary(data: bytes) -> bytes:
    return b"\x6d" + struct.pack(">I", len(data)) + data


def atom(name: bytes) -> bytes:
    return b"\x64" + struct.pack(">H", len(name)) + name


ERROR = atom(b"error")

# wire-protocol.md §12.2 / §12.3 frames (payload after the 4-byte length).
SPEC_PAYLOADS = {
    "spec_beprimary_n1": "83 68 02 61 01 6D 00 00 00 02 6E 31",
    "spec_besecondary_ipv4": "83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31"
                             " 68 04 61 0A 61 00 61 00 61 01 61 01",
    "spec_besecondary_ipv6": "83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31"
                             " 68 08 61 00 61 00 61 00 61 00 61 00 61 00 61 00 61 01 61 00",
    "spec_besecondary_straddr": "83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31"
                                " 6D 00 00 00 0F 70 72 69 6D 61 72 79 2E 65 78 61 6D 70 6C 65"
                                " 61 01",
    "spec_benone": "83 68 01 61 03",
    "spec_getstatus": "83 68 01 61 04",
    "spec_reply_ok": "83 64 00 02 6F 6B",
    "spec_reply_error_17": "83 68 02 64 00 05 65 72 72 6F 72 61 11",
    "spec_reply_error_28_reason": "83 68 03 64 00 05 65 72 72 6F 72 61 1C 6D 00 00 00 0A"
                                  " 62 61 64 20 74 6F 6B 65 6E 00",
    "spec_status_none": "83 68 02 61 01 6A",
    "spec_status_ipv4": "83 68 02 61 02 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 31 68 04 61 0A"
                        " 61 00 61 00 61 01 6A",
    "spec_status_ipv6": "83 68 02 61 03 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 32 68 08 62 00"
                        " 00 20 01 62 00 00 0D B8 61 00 61 00 61 00 61 00 61 00 61 02 6A",
    "spec_status_relay": "83 68 02 61 04 6C 00 00 00 02 68 02 6D 00 00 00 02 6E 31 68 04 61 0A"
                         " 61 00 61 00 61 01 68 02 6D 00 00 00 02 6E 33 68 04 61 0A 61 00 61 00"
                         " 61 03 6A",
    "spec_subscribe": "83 68 05 61 40 61 00 61 00 64 00 09 75 6E 64 65 66 69 6E 65 64 61 00",
    "spec_event_died": "83 68 02 61 40 68 02 61 02 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00"
                       " 61 00 61 02",
    "spec_ha_synced": "83 64 00 09 68 61 5F 73 79 6E 63 65 64",
}

# Edge cases of the generic decoder (wire-protocol.md §8 and refcodec's exact rules).
TERM_EDGES = {
    "empty": b"",
    "version_only": V,
    "bad_version": b"\x84\x61\x01",
    "extra_byte": V + b"\x61\x01\x00",
    "nested_100": V + b"\x68\x01" * 99 + b"\x6a",
    "nested_101": V + b"\x68\x01" * 100 + b"\x6a",
    "nested_list_100": V + b"\x6c\x00\x00\x00\x01" * 99 + b"\x6a" + b"\x6a" * 99,
    "deep_string": V + b"\x68\x01" * 99 + b"\x6b\x00\x01\x41",
    "improper_list": V + b"\x6c\x00\x00\x00\x01\x61\x01\x61\x02",
    "list_missing_tail": V + b"\x6c\x00\x00\x00\x01\x61\x01",
    "list_huge_count": V + b"\x6c\xff\xff\xff\xff\x6a",
    "tuple_huge_arity": V + b"\x69\xff\xff\xff\xff\x61\x01",
    "large_tuple_2": V + b"\x69\x00\x00\x00\x02\x61\x01\x6a",
    "compressed": V + b"\x50\x00\x00\x00\x03\x78\x9c\x00",
    "compressed_tail": V + b"\x6c\x00\x00\x00\x01\x61\x01\x50",
    "pid_tag": V + b"\x67\x00",
    "map_tag": V + b"\x74\x00\x00\x00\x00",
    "int_neg": V + b"\x62\x80\x00\x00\x00",
    "int_truncated": V + b"\x62\x00\x00",
    "big_u64_max": V + b"\x6e\x08\x00" + b"\xff" * 8,
    "big_neg_u64_max": V + b"\x6e\x08\x01" + b"\xff" * 8,
    "big_2p64": V + b"\x6e\x09\x00" + b"\x00" * 8 + b"\x01",
    "big_padded": V + b"\x6e\x0a\x01\x05" + b"\x00" * 9,
    "big_neg_zero": V + b"\x6e\x01\x01\x00",
    "big_bad_sign": V + b"\x6e\x01\x02\x05",
    "big_empty": V + b"\x6e\x00\x00",
    "large_big": V + b"\x6f\x00\x00\x00\x03\x00\x01\x02\x03",
    "large_big_huge_len": V + b"\x6f\xff\xff\xff\xff\x00",
    "new_float_neg0": V + b"\x46\x80" + b"\x00" * 7,
    "new_float_inf": V + b"\x46\x7f\xf0" + b"\x00" * 6,
    "new_float_nan": V + b"\x46\x7f\xf8" + b"\x00" * 6,
    "new_float_subnormal": V + b"\x46" + b"\x00" * 7 + b"\x01",
    "old_float_1_5": V + old_float(b"1.50000000000000000000e+00"),
    "old_float_neg": V + old_float(b"-2.5e-3"),
    "old_float_dot5": V + old_float(b".5"),
    "old_float_1dot": V + old_float(b"1."),
    "old_float_overflow": V + old_float(b"1e999"),
    "old_float_underflow": V + old_float(b"1e-999"),
    "old_float_junk": V + old_float(b"1.5x"),
    "old_float_no_digits": V + old_float(b"+.e5"),
    "old_float_nul_inside": V + b"\x63" + b"1.5\x001" + b"\x00" * 26,
    "old_float_full": V + b"\x63" + b"1" * 31,
    "old_float_hex": V + old_float(b"0x1p3"),
    "old_float_inf_text": V + old_float(b"inf"),
    "atom_latin1": V + b"\x64\x00\x04caf\xe9",
    "small_atom": V + b"\x73\x02ok",
    "atom_utf8": V + b"\x76\x00\x02\xc3\xa9",
    "small_atom_utf8_4byte": V + b"\x77\x04\xf0\x9f\x98\x80",
    "atom_utf8_overlong": V + b"\x77\x02\xc0\x80",
    "atom_utf8_surrogate": V + b"\x77\x03\xed\xa0\x80",
    "atom_utf8_above_max": V + b"\x77\x04\xf4\x90\x80\x80",
    "atom_utf8_cut": V + b"\x77\x02\xe2\x82",
    "atom_too_long": V + b"\x64\xff\xff" + b"a" * 4,
    "string_abc": V + b"\x6b\x00\x03abc",
    "string_empty": V + b"\x6b\x00\x00",
    "string_short": V + b"\x6b\x00\x05ab",
    "binary_short": V + b"\x6d\x00\x00\x00\x05ab",
    "binary_huge_len": V + b"\x6d\xff\xff\xff\xff",
    "binary_nul": V + binary(b"a\x00b"),
    "mixed": V + b"\x6c\x00\x00\x00\x03\x6b\x00\x02\x01\x02" + old_float(b"3.0")
             + b"\x77\x01z\x6a",
}

E28 = V + b"\x68\x03" + ERROR + b"\x61\x1c"  # {error, 28, ...
REPLY_EDGES = {
    "reply_atom_other": V + atom(b"done"),
    "reply_small_atom_ok": V + b"\x73\x02ok",
    "reply_utf8_atom_ok": V + b"\x76\x00\x02ok",
    "reply_error_string": E28 + b"\x6b\x00\x03bad",
    "reply_error_list": E28 + b"\x6c\x00\x00\x00\x02\x61\x68\x61\x69\x6a",
    "reply_error_list_bad": E28 + b"\x6c\x00\x00\x00\x01\x62\x00\x00\x01\x00\x6a",
    "reply_error_nil": E28 + b"\x6a",
    "reply_error_apptag": E28 + b"\x68\x02" + binary(b"why\x00") + atom(b"tag"),
    "reply_error_apptag_bad": E28 + b"\x68\x02" + atom(b"x") + atom(b"tag"),
    "reply_error_int_reason": E28 + b"\x61\x01",
    "reply_error_bigcode": V + b"\x68\x02" + ERROR + b"\x6e\x08\x00" + b"\xff" * 8,
    "reply_error_negcode": V + b"\x68\x02" + ERROR + b"\x62\xff\xff\xff\xff",
    "reply_error_i64min": V + b"\x68\x02" + ERROR + b"\x6e\x08\x01" + b"\x00" * 7 + b"\x80",
    "reply_error_atomcode": V + b"\x68\x02" + ERROR + atom(b"x"),
    "reply_not_error": V + b"\x68\x02" + atom(b"errox") + b"\x61\x01",
    "reply_tuple_1": V + b"\x68\x01" + ERROR,
    "reply_tuple_4": V + b"\x68\x04" + ERROR + b"\x61\x01\x6a\x6a",
    "reply_int": V + b"\x61\x00",
    "reply_error_eof": V + b"\x68\x02" + ERROR + b"\x62\xff\xff\xff\xfe",
    "reply_error_zero": V + b"\x68\x02" + ERROR + b"\x61\x00",
    "reply_error_invalid_utf8": V + b"\x68\x03" + ERROR + b"\x61\x01" + binary(b"\xff\xfe\x00"),
}

IP4 = b"\x68\x04\x61\x0a\x61\x00\x61\x00\x61\x01"
STATUS_EDGES = {
    "status_string_nodes_empty": V + b"\x68\x02\x61\x01\x6b\x00\x00",
    "status_string_nodes": V + b"\x68\x02\x61\x01\x6b\x00\x02\x01\x02",
    "status_int_nodeid": V + b"\x68\x02\x61\x03\x6c\x00\x00\x00\x01\x68\x02\x61\x07" + IP4
                         + b"\x6a",
    "status_generic_then_bad": V + b"\x68\x02\x61\x03\x6c\x00\x00\x00\x02\x68\x02\x61\x07" + IP4
                               + b"\x61\x05\x6a",
    "status_list_addr": V + b"\x68\x02\x61\x02\x6c\x00\x00\x00\x01\x68\x02" + binary(b"n1")
                        + b"\x6b\x00\x03h.x\x6a",
    "status_list_addr_ints": V + b"\x68\x02\x61\x02\x6c\x00\x00\x00\x01\x68\x02" + binary(b"n1")
                             + b"\x6c\x00\x00\x00\x01\x61\x41\x6a\x6a",
    "status_nul_addr": V + b"\x68\x02\x61\x02\x6c\x00\x00\x00\x01\x68\x02" + binary(b"n1")
                       + binary(b"a\x00b") + b"\x6a",
    "status_nul_id": V + b"\x68\x02\x61\x02\x6c\x00\x00\x00\x01\x68\x02" + binary(b"n\x001")
                     + IP4 + b"\x6a",
    "status_ipv4_mapped": V + b"\x68\x02\x61\x02\x6c\x00\x00\x00\x01\x68\x02" + binary(b"n")
                          + b"\x68\x08" + b"\x61\x00" * 5 + b"\x62\x00\x00\xff\xff\x61\x01\x61\x02"
                          + b"\x6a",
    "status_ip_out_of_range": V + b"\x68\x02\x61\x02\x6c\x00\x00\x00\x01\x68\x02" + binary(b"n")
                              + b"\x68\x04\x62\x00\x00\x01\x00\x61\x00\x61\x00\x61\x01\x6a",
    "status_addr_3tuple": V + b"\x68\x02\x61\x02\x6c\x00\x00\x00\x01\x68\x02" + binary(b"n")
                          + b"\x68\x03\x61\x00\x61\x00\x61\x00\x6a",
    "status_node_3tuple": V + b"\x68\x02\x61\x02\x6c\x00\x00\x00\x01\x68\x03" + binary(b"n")
                          + IP4 + b"\x61\x00\x6a",
    "status_neg_state": V + b"\x68\x02\x62\xff\xff\xff\xff\x6a",
    "status_big_state": V + b"\x68\x02\x6e\x08\x00" + b"\xff" * 8 + b"\x6a",
    "status_atom_nodes": V + b"\x68\x02\x61\x01" + atom(b"x"),
    "status_many_empty_ids": V + b"\x68\x02\x61\x03\x6c\x00\x00\x00\x04"
                             + (b"\x68\x02" + binary(b"") + IP4) * 4 + b"\x6a",
    "status_value_nodeid_prefix_bad": V + b"\x68\x02\x61\x03\x6c\x00\x00\x00\x01\x68\x02"
                                      + b"\x68\x02\x61\x28\x68\x02\x68\x04\x62\x00\x00\x01\x00"
                                      + b"\x61\x00\x61\x00\x61\x00\x61\x08" + IP4 + b"\x6a",
    "status_value_nodeid_prefix": V + b"\x68\x02\x61\x03\x6c\x00\x00\x00\x01\x68\x02"
                                  + b"\x68\x02\x61\x1e\x68\x02\x68\x04\x62\x00\x00\x01\x00\x61\x00"
                                  + b"\x61\x00\x61\x00\x61\x08" + IP4 + b"\x6a",
}

HELLO_SPEC = {
    "hello_ha": "11 00 52 08 02 05 00 00 00",
    "hello_ha_v2": "D1 00 52 08 02 05 00 00 00",
    "hello_ha_v1": "91 00 52 08 02 05 00 00 00",
    "hello_event": "0B 00 52 08 02 05 00 00 00",
    "hello_c_client": "11 00 52 08 02 05 00 3C 12",
    "reply_accepted": "00 00 52 08 02 05 00 3C 12",
    "reply_rejected": "01 00 52 08 02 05 00 3C 12",
    "challenge_v2": "0B" + bytes(range(32)).hex(),
    "challenge_v1": "0B" + bytes(range(16)).hex(),
    "response_v2": "0C 0D 79 43 02 8D 06 F7 22 E3 22 33 E6 0F 3A F8 08"
                   " 20 7D 30 14 BC 42 FA F5 CD 56 11 9F 10 3E 20 1A",
    "response_v1": "0C C3 B2 64 5F 7D C0 82 E7 DC 50 F8 39 77 19 81 50",
    "frame_header_5": "00 00 00 05",
    "frame_header_16m": "01 00 00 00",
    "frame_header_16m_plus1": "01 00 00 01",
    "frame_header_max": "FF FF FF FF",
    "frame_header_limit": "00 00 10 00 00 00 0F FF",
    "access_ok": "00",
}
IPV6 = {
    "ipv6_zero": "00" * 16,
    "ipv6_loopback": "00" * 15 + "01",
    "ipv6_v4mapped": "00" * 10 + "ffff" + "0a000001",
    "ipv6_v4compat": "00" * 12 + "0a000001",
    "ipv6_v4compat_short": "00" * 14 + "0a01",
    "ipv6_doc": "20010db8" + "00" * 11 + "02",
    "ipv6_two_runs": "0001 0000 0000 0001 0000 0000 0000 0001",
    "ipv6_tie": "0001 0000 0000 0001 0001 0000 0000 0001",
    "ipv6_single_zero": "0001 0000 0001 0001 0001 0001 0001 0001",
    "ipv6_trailing_run": "0001 0002" + "0000" * 6,
    "ipv6_full": "ffff" * 8,
    "ipv6_ffff0": "00" * 10 + "ffff" + "0000" + "0000",
    "ipv6_fffe": "00" * 10 + "fffe" + "0a000001",
}


def write(harness: str, name: str, data: bytes) -> None:
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def main() -> None:
    with open(GOLDEN, encoding="utf-8") as f:
        golden = {k: bytes.fromhex(v) for k, v in json.load(f)["vectors"].items()}
    terms = dict(golden)
    terms.update({k: h(v) for k, v in SPEC_PAYLOADS.items()})
    terms.update(TERM_EDGES)
    for name, data in terms.items():
        if len(data) <= 1024:  # the large ones add size, not coverage
            write("decode", name, data)
            write("roundtrip", name, data)
    for name, data in list(terms.items()) + list(REPLY_EDGES.items()):
        if "reply" in name or name in ("empty", "extra_byte", "compressed", "atom_utf8"):
            write("reply", name, data)
    for name, data in list(terms.items()) + list(STATUS_EDGES.items()):
        if "status" in name or name in ("empty", "extra_byte", "compressed", "nested_101"):
            write("status", name, data)
    for name, text in HELLO_SPEC.items():
        write("handshake", name, h(text))
    for name, text in IPV6.items():
        write("handshake", name, h(text))
    write("handshake", "empty", b"")


if __name__ == "__main__":
    main()
