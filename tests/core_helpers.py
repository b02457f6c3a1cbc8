"""What the C core's decode statuses mean in the reference codec's terms: shared by the
differential tests (tests/test_core_differential.py) and the fuzz oracles (fuzz/oracles.py)."""

from __future__ import annotations

from confd_ha._core import lib

# chd_status -> refcodec.DecodeError.kind of the same refusal (a wrong version byte is a bad
# tag to the reference codec).
KIND_OF_STATUS = {
    lib.CHD_E_TRUNCATED: "truncated",
    lib.CHD_E_EXTRA: "extra",
    lib.CHD_E_BADTAG: "badtag",
    lib.CHD_E_VERSION: "badtag",
    lib.CHD_E_TOODEEP: "toodeep",
    lib.CHD_E_BADVALUE: "badvalue",
}
