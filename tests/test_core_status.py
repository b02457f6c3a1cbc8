"""The status reply's decoding paths and the C core's status on its errors (issue 10)."""

from __future__ import annotations

import pytest

from confd_ha import _codec, _protocol, error


def test_no_peer_table_is_what_the_codec_decodes():
    # The constant table answers {State, []} without a decode: each entry must be exactly the
    # payload the codec reads back as that reply.
    assert len(_protocol._NO_PEERS) == 256
    for payload, state in _protocol._NO_PEERS.items():
        assert _codec.decode(payload) == (state, [])
        assert _protocol.decode_status(bytearray(payload)) == (state, [])


def test_no_peer_results_are_never_shared():
    payload = _codec.encode((1, []))
    first = _protocol.decode_status(payload)
    first[1].append({"nodeid": "added", "address": "by the caller"})
    assert _protocol.decode_status(payload) == (1, [])


@pytest.mark.parametrize("payload, status", [
    (b"\x83h\x02a\x01", -1),          # truncated
    (b"\x83h\x02a\x01jj", -2),        # extra bytes
    (b"\x83d\x00\x02ok", -7),         # not {State, [...]}
])
def test_status_error_keeps_the_core_status(payload, status):
    with pytest.raises(error.Error) as info:
        _protocol.decode_status(payload)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert info.value.confd_lasterr == "unexpected reply from daemon"
    assert info.value.core_status == status


def test_reply_error_keeps_the_core_status():
    with pytest.raises(error.Error) as info:
        _protocol.decode_reply(b"\x83h\x02a\x01")
    assert info.value.confd_lasterr == "unexpected reply from daemon"
    assert info.value.core_status == -1
