/*
 * libFuzzer harness: chd_reply_decode (the reply of an HA order, W-18) on arbitrary payloads.
 *
 * A reply decodes only if the generic decoder accepts the payload; a payload the generic
 * decoder accepts but that is not a reply shape gives CHD_E_SHAPE; the offsets it returns lie
 * inside the input.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    chd_reply rep;
    size_t count = 0;
    int st, generic;

    memset(&rep, 0xA5, sizeof(rep));  /* the decoder must reset every field */
    st = chd_reply_decode(data, size, &rep);
    generic = chd_decode(data, size, NULL, 0, &count);
    FUZZ_CHECK(fuzz_is_status(st));
    if (generic != CHD_OK) {
        FUZZ_CHECK(st == generic);
        return 0;
    }
    if (st != CHD_OK) {
        FUZZ_CHECK(st == CHD_E_SHAPE);
        return 0;
    }
    switch (rep.kind) {
    case CHD_REPLY_OK:
    case CHD_REPLY_ATOM:
        FUZZ_CHECK(rep.atom_off <= size && rep.atom_len <= size - rep.atom_off);
        FUZZ_CHECK((rep.kind == CHD_REPLY_OK) ==
                   (rep.atom_len == 2 && memcmp(data + rep.atom_off, "ok", 2) == 0));
        FUZZ_CHECK(rep.reason_kind == CHD_REASON_NONE);
        break;
    case CHD_REPLY_ERROR:
        FUZZ_CHECK(rep.reason_kind == CHD_REASON_NONE);
        break;
    case CHD_REPLY_ERROR_REASON:
        FUZZ_CHECK(rep.reason_kind == CHD_REASON_BYTES || rep.reason_kind == CHD_REASON_LIST);
        if (rep.reason_kind == CHD_REASON_BYTES)
            FUZZ_CHECK(rep.reason_off <= size && rep.reason_len <= size - rep.reason_off);
        break;
    default:
        FUZZ_CHECK(!"unknown reply kind");
    }
    return 0;
}
